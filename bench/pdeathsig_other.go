//go:build !linux

package bench

import "os/exec"

// setPdeathsig does nothing where the kernel cannot kill a child with its
// parent; Stop ends the process.
func setPdeathsig(*exec.Cmd) {}
