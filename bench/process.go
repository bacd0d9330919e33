package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// processAdminPassword is the bootstrap admin's password of the processes
// the soak and churn modes start.
const processAdminPassword = "bench process admin password"

// node is a `gatehouse serve` process started by the bench.
type node struct {
	cmd *exec.Cmd
	URL string
	// log is the file the process writes its log to; stderr receives its
	// warnings and errors when it stops.
	log    *os.File
	stderr io.Writer
}

// startNode starts bin serve on a free loopback port with flags and waits
// until it answers /healthz. It logs as shipped, at level (the server's
// default, info, when ""), to a file of its own, as a service manager
// would keep its standard error: the request log costs what it costs in
// production. The process dies with the bench (Stop, or SIGKILL when the
// bench process itself dies).
func startNode(ctx context.Context, bin string, stderr io.Writer, level string, flags ...string) (*node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.CreateTemp("", "gatehouse-bench-node-*.log")
	if err != nil {
		return nil, err
	}
	if level != "" {
		flags = append(flags, "--log-level", level)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, flags...)...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+processAdminPassword)
	cmd.Stdout, cmd.Stderr = log, log
	setPdeathsig(cmd)
	n := &node{cmd: cmd, URL: "http://" + addr, log: log, stderr: stderr}
	if err := cmd.Start(); err != nil {
		n.closeLog()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(n.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.Stop()
			return nil, fmt.Errorf("gatehouse serve did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logNote says how the nodes started with level log, for a mode's header.
func logNote(level string) string {
	if level == "" || strings.EqualFold(level, "info") || strings.EqualFold(level, "debug") {
		return "as shipped: request log on (text, level info, to a file)"
	}
	return "request log OFF (level " + level + "): not the shipped configuration"
}

// Stop ends the process: SIGTERM, then SIGKILL after 10 s. Its log's
// warnings and errors then go to the bench's stderr, and the log is
// removed.
func (n *node) Stop() {
	if n.cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
	n.closeLog()
}

// closeLog copies the lines of n's log that are not info or debug (the
// request log is info) to n.stderr, then closes and removes it.
func (n *node) closeLog() {
	defer os.Remove(n.log.Name())
	defer n.log.Close()
	if _, err := n.log.Seek(0, io.SeekStart); err != nil {
		return
	}
	sc := bufio.NewScanner(n.log)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte("level=INFO")) || bytes.Contains(line, []byte("level=DEBUG")) {
			continue
		}
		n.stderr.Write(append(line, '\n'))
	}
}

// RSS returns the process's resident set size from /proc/PID/status, or 0.
func (n *node) RSS() int64 { return rssOf("/proc/" + strconv.Itoa(n.cmd.Process.Pid) + "/status") }

// rssOf reads VmRSS from a /proc status file, in bytes, or 0.
func rssOf(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// processDefaults fills what the modes that run server processes (soak,
// churn) leave unset: their report and the servers' standard error go
// nowhere, and the server binary is this one.
func processDefaults(stderr *io.Writer, out io.Writer, binary string) (io.Writer, string, error) {
	if out == nil {
		out = io.Discard
	}
	if *stderr == nil {
		*stderr = io.Discard
	}
	if binary == "" {
		var err error
		if binary, err = os.Executable(); err != nil {
			return nil, "", err
		}
	}
	return out, binary, nil
}
