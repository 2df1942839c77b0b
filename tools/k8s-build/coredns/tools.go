//go:build tools

// Package tools pins the commands build.sh compiles; never built itself.
package tools

import (
	_ "github.com/coredns/coredns"
)
