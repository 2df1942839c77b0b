"""The lab's BMC: the part of the DMTF Redfish API that powers a server off and on, for the lab's hosts.

A real server's BMC answers Redfish on its own network port whatever the host does; the lab's hosts are
Docker containers (systemd as PID 1), so one process on the machine plays the BMC of all of them: a
ComputerSystem per host container, its power the container's state. What community.general's
redfish_command (category Systems, Power*) and redfish_info (GetSystemInventory) read and post:

    GET  /redfish/v1                          service root (no authentication, as Redfish says)
    GET  /redfish/v1/Systems                  the lab's host containers
    GET  /redfish/v1/Systems/<id>             PowerState On/Off (docker inspect), the Reset action
    POST /redfish/v1/Systems/<id>/Actions/ComputerSystem.Reset   {"ResetType": ...}
         On: docker start; ForceOff: docker kill; GracefulShutdown: docker stop;
         ForceRestart: docker restart -t 0; GracefulRestart: docker restart
    GET  /redfish/v1/Chassis[/<id>], /redfish/v1/Managers[/bmc], /redfish/v1/SessionService[/Sessions]

Everything but the service root needs HTTP Basic authentication with the lab's credentials (401
otherwise; no sessions). Only containers labelled as this lab's hosts (lab.py's label with the lab's name)
are systems: any other name is 404, so the BMC cannot stop the machine's other containers.

Only the standard library; docker is run through a callable passed in (tests pass a fake one).
"""

from __future__ import annotations

import base64
import hmac
import http.server
import json
import os
import re
import ssl
import subprocess
import threading

PORT = 18443
ROOT = "/redfish/v1"
MANAGER_ID = "bmc"
# ResetType -> the docker command; "On" also answers ForceOn (community.general maps between them).
RESETS = {
    "On": ("start",),
    "ForceOff": ("kill",),
    "GracefulShutdown": ("stop",),
    "ForceRestart": ("restart", "-t", "0"),
    "GracefulRestart": ("restart",),
}
# Docker's container name rule; a system id is a container name, never an option ("-...") or a path.
CONTAINER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")


class RedfishError(Exception):
    """An answer other than 2xx: HTTP status, Redfish MessageId (Base registry) and message."""

    def __init__(self, status, message_id, message):
        super().__init__(message)
        self.status = status
        self.message_id = message_id
        self.message = message

    def body(self):
        return {"error": {"code": "Base.1.8." + self.message_id, "message": self.message,
                          "@Message.ExtendedInfo": [{"MessageId": "Base.1.8." + self.message_id,
                                                     "Message": self.message, "Severity": "Warning"}]}}


def not_found(path):
    return RedfishError(404, "ResourceNotFound", "no resource %s on this BMC" % path)


def link(path):
    return {"@odata.id": path}


def collection(path, kind, name, members):
    return {"@odata.id": path, "@odata.type": "#%sCollection.%sCollection" % (kind, kind), "Name": name,
            "Members": [link(m) for m in members], "Members@odata.count": len(members)}


class Bmc:
    """The Redfish resources of one lab's hosts (no HTTP here: ``handle`` maps a request to an answer).

    The hosts are the containers whose ``label`` is ``lab``. ``docker(*args)`` runs the docker CLI and
    returns an object with ``returncode``, ``stdout`` and ``stderr`` (a subprocess.CompletedProcess);
    ``log(message)`` is told every power action.
    """

    def __init__(self, lab, label, docker, *, username, password, log=None):
        self.lab = lab
        self.label = label
        self.docker = docker
        self.username = username
        self.password = password
        self.log = log or (lambda message: None)
        self.lock = threading.Lock()  # one power action at a time

    # --- requests

    def authorized(self, header):
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _sep, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        # Both compared, always: no early answer that tells a right user name from a wrong one.
        return bool(hmac.compare_digest(user.encode(), self.username.encode()) & hmac.compare_digest(
            password.encode(), self.password.encode()))

    def handle(self, method, path, authorization, body):
        """(status, payload or None) for one request; raises nothing."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        path = "/" + "/".join(part for part in path.split("/") if part)
        try:
            if path == "/redfish":
                return self.only(method, "GET", 200, {"v1": ROOT + "/"})
            if path == ROOT:
                return self.only(method, "GET", 200, self.service_root())
            if not path.startswith(ROOT + "/"):
                raise not_found(path)
            if not self.authorized(authorization):
                raise RedfishError(401, "NoValidSession", "HTTP Basic authentication with the lab's BMC "
                                   "credentials (bmc_credentials.lab in the lab's group_vars) is required")
            return self.resource(method, path[len(ROOT) + 1:].split("/"), path, body)
        except RedfishError as exc:
            return exc.status, exc.body()
        except Exception as exc:  # a broken docker call is a 500, not a dropped connection
            return 500, RedfishError(500, "InternalError", "%s: %s" % (type(exc).__name__, exc)).body()

    @staticmethod
    def only(method, allowed, status, payload):
        if method != allowed:
            raise RedfishError(405, "ActionNotSupported", "%s is not supported here; use %s" % (method, allowed))
        return status, payload

    def resource(self, method, parts, path, body):
        kind, rest = parts[0], parts[1:]
        if kind == "Systems":
            if not rest:
                return self.only(method, "GET", 200, collection(path, "ComputerSystem", "Computer System Collection",
                                                                ["%s/Systems/%s" % (ROOT, n) for n in self.hosts()]))
            if len(rest) == 1:
                return self.only(method, "GET", 200, self.system(rest[0], path))
            if rest[1:] == ["Actions", "ComputerSystem.Reset"]:
                self.only(method, "POST", 204, None)
                return self.reset(rest[0], path, body)
        elif kind == "Chassis":
            if not rest:
                return self.only(method, "GET", 200, collection(path, "Chassis", "Chassis Collection",
                                                                ["%s/Chassis/%s" % (ROOT, n) for n in self.hosts()]))
            if len(rest) == 1:
                return self.only(method, "GET", 200, self.chassis(rest[0], path))
        elif kind == "Managers":
            if not rest:
                return self.only(method, "GET", 200, collection(path, "Manager", "Manager Collection",
                                                                ["%s/Managers/%s" % (ROOT, MANAGER_ID)]))
            if rest == [MANAGER_ID]:
                return self.only(method, "GET", 200, self.manager(path))
        elif kind == "SessionService":
            if not rest:
                return self.only(method, "GET", 200, {
                    "@odata.id": path, "@odata.type": "#SessionService.v1_1_8.SessionService",
                    "Id": "SessionService", "Name": "Session Service", "ServiceEnabled": False,
                    "SessionTimeout": 1800, "Sessions": link(path + "/Sessions")})
            if rest == ["Sessions"]:
                if method == "POST":
                    raise RedfishError(405, "ActionNotSupported",
                                       "the lab's BMC has no sessions; use HTTP Basic authentication")
                return self.only(method, "GET", 200, collection(path, "Session", "Session Collection", []))
        raise not_found(path)

    # --- resources

    def service_root(self):
        return {
            "@odata.id": ROOT, "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot", "Id": "RootService",
            "Name": "baremetal.k8s lab BMC (%s)" % self.lab, "RedfishVersion": "1.6.0",
            "Vendor": "baremetal.k8s lab",
            "Systems": link(ROOT + "/Systems"), "Chassis": link(ROOT + "/Chassis"),
            "Managers": link(ROOT + "/Managers"), "SessionService": link(ROOT + "/SessionService"),
            "Links": {"Sessions": link(ROOT + "/SessionService/Sessions")},
        }

    def system(self, name, path):
        state = self.power_state(self.host(name, path))
        return {
            "@odata.id": path, "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
            "Id": name, "Name": name, "HostName": name, "SystemType": "Physical",
            "Manufacturer": "baremetal.k8s lab", "Model": "Docker container (systemd as PID 1)",
            "PowerState": state,
            "Status": {"State": "Enabled" if state == "On" else "StandbyOffline", "Health": "OK"},
            "Actions": {"#ComputerSystem.Reset": {
                "target": "%s/Systems/%s/Actions/ComputerSystem.Reset" % (ROOT, name),
                "ResetType@Redfish.AllowableValues": list(RESETS)}},
            "Links": {"Chassis": [link("%s/Chassis/%s" % (ROOT, name))],
                      "ManagedBy": [link("%s/Managers/%s" % (ROOT, MANAGER_ID))]},
        }

    def chassis(self, name, path):
        state = self.power_state(self.host(name, path))
        return {
            "@odata.id": path, "@odata.type": "#Chassis.v1_10_0.Chassis", "Id": name, "Name": name,
            "ChassisType": "RackMount", "PowerState": state, "Status": {"State": "Enabled", "Health": "OK"},
            "Links": {"ComputerSystems": [link("%s/Systems/%s" % (ROOT, name))],
                      "ManagedBy": [link("%s/Managers/%s" % (ROOT, MANAGER_ID))]},
        }

    def manager(self, path):
        hosts = self.hosts()
        return {
            "@odata.id": path, "@odata.type": "#Manager.v1_10_0.Manager", "Id": MANAGER_ID,
            "Name": "lab BMC of %s" % self.lab, "ManagerType": "BMC", "PowerState": "On",
            "Status": {"State": "Enabled", "Health": "OK"},
            "Links": {"ManagerForServers": [link("%s/Systems/%s" % (ROOT, n)) for n in hosts],
                      "ManagerForChassis": [link("%s/Chassis/%s" % (ROOT, n)) for n in hosts]},
        }

    def reset(self, name, path, body):
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise RedfishError(400, "MalformedJSON", "the request body is not JSON") from None
        reset_type = payload.get("ResetType") if isinstance(payload, dict) else None
        if reset_type == "ForceOn":
            reset_type = "On"
        if reset_type not in RESETS:
            raise RedfishError(400, "ActionParameterValueNotInList", "ResetType %r is not one of %s"
                               % (reset_type, ", ".join(RESETS)))
        with self.lock:
            state = self.power_state(self.host(name, path.rsplit("/Actions/", 1)[0]))
            if (state, reset_type) in (("On", "On"), ("Off", "ForceOff"), ("Off", "GracefulShutdown")):
                return 204, None  # already there
            command = RESETS[reset_type]
            self.log("%s %s (docker %s)" % (reset_type, name, " ".join(command)))
            result = self.docker(*command, name)
            if result.returncode != 0:
                raise RedfishError(500, "InternalError", "docker %s %s failed: %s"
                                   % (" ".join(command), name, (result.stderr or result.stdout or "").strip()))
        return 204, None

    # --- docker

    def hosts(self):
        result = self.docker("ps", "-a", "--filter", "label=%s=%s" % (self.label, self.lab), "--format", "{{.Names}}")
        if result.returncode != 0:
            raise RedfishError(500, "InternalError", "docker ps failed: %s" % (result.stderr or "").strip())
        return sorted(n for n in result.stdout.split() if CONTAINER_RE.match(n))

    def host(self, name, path):
        """The container ``name`` (docker inspect's record) if it is one of this lab's hosts, else 404."""
        if not CONTAINER_RE.match(name):
            raise not_found(path)
        result = self.docker("container", "inspect", name)
        if result.returncode != 0:
            raise not_found(path)
        try:
            record = json.loads(result.stdout)[0]
        except (ValueError, IndexError, KeyError, TypeError):
            raise RedfishError(500, "InternalError", "docker inspect %s gave no container record" % name) from None
        labels = (record.get("Config") or {}).get("Labels") or {}
        # inspect also finds a container by an ID prefix: only the exact name of a host of this lab counts.
        if record.get("Name") != "/" + name or labels.get(self.label) != self.lab:
            raise not_found(path)
        return record

    @staticmethod
    def power_state(record):
        state = record.get("State") or {}
        if state.get("Restarting"):
            return "PoweringOn"
        return "On" if state.get("Running") else "Off"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "bmk8s-lab-bmc"
    protocol_version = "HTTP/1.1"

    def answer(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status, payload = self.server.bmc.handle(method, self.path, self.headers.get("Authorization"), body)
        data = b"" if payload is None else json.dumps(payload, indent=1).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("OData-Version", "4.0")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="baremetal.k8s lab BMC"')
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")

    def do_PATCH(self):
        self.answer("PATCH")

    def do_PUT(self):
        self.answer("PUT")

    def do_DELETE(self):
        self.answer("DELETE")

    def log_message(self, *args):  # the power actions are logged by Bmc
        pass


class Server(http.server.ThreadingHTTPServer):
    """The HTTP(S) server of a ``Bmc``; TLS is negotiated in each request's thread, not in the accept loop."""

    daemon_threads = True

    def __init__(self, address, bmc, tls=None):
        self.bmc = bmc
        self.tls = tls
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(30)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):  # a client that does not speak TLS, or gives up
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()

    def handle_error(self, request, client_address):  # a client that hung up is no traceback
        pass

    @property
    def url(self):
        host, port = self.server_address[:2]
        return "%s://%s:%d" % ("https" if self.tls else "http", host, port)


def tls_context(certfile, keyfile):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


def self_signed_cert(directory, address):
    """A certificate for ``address`` (made once, with the openssl CLI); returns (certfile, keyfile).

    Real BMCs come with one of these too, which is why the fleet's ``validate_certs: false`` exists.
    """
    cert, key = os.path.join(directory, "bmc.crt"), os.path.join(directory, "bmc.key")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    os.makedirs(directory, exist_ok=True)
    san = ("IP:" if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", address) else "DNS:") + address
    try:
        result = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
             "/CN=baremetal.k8s lab BMC", "-addext", "subjectAltName=" + san, "-keyout", key + ".partial",
             "-out", cert], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SystemExit("lab: the BMC needs the openssl command for its certificate (apt-get install openssl)") \
            from None
    if result.returncode != 0:
        raise SystemExit("lab: openssl could not make the BMC's certificate: %s" % result.stderr.strip())
    os.chmod(key + ".partial", 0o600)
    os.replace(key + ".partial", key)
    return cert, key
