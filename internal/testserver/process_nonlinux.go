//go:build unix && !linux

package testserver

import "syscall"

func setPdeathsig(*syscall.SysProcAttr) {}
