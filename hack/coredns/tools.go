//go:build tools

// Package coredns pins the CoreDNS command the lab builds.
package coredns

import _ "github.com/coredns/coredns"
