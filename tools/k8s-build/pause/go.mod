// The pause program for the sandbox image (see ../build.sh): no dependencies.
module baremetal.k8s/tools/k8s-build/pause

go 1.26.0
