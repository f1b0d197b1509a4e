//go:build !unix

package testserver

import "os/exec"

func setProcAttr(*exec.Cmd) {}

func killProc(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
