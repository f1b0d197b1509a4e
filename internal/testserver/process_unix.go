//go:build unix

package testserver

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in its own process group, so that killing it
// also kills any child it forked, and (on Linux) has the kernel kill it if
// the test binary dies without running its cleanups.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(cmd.SysProcAttr)
}

// killProc sends SIGKILL to the process group, and to the process itself in
// case it left the group.
func killProc(cmd *exec.Cmd) {
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
