package gateway

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// errExchangeOver is what a proxied request body answers once its handler
// has returned.
var errExchangeOver = errors.New("gateway: the exchange is over")

// deadlines keeps a proxied exchange going for as long as it makes
// progress. The server's read and write timeouts run from the start of a
// request and would cut a long upload or a long stream; for a proxied
// request they are lifted, and instead each read of the request body must
// finish within read, and each write of the answer within write (per-request
// deadlines through http.ResponseController). Header and idle timeouts are
// untouched. When the exchange has an end (the proxy timeout), no read
// deadline lies beyond it, so that a body trickling in slowly is cut there.
//
// Read deadlines are touched only while the body is being read and never
// after the handler returns: once the body is at its end the server reads
// the connection in the background to notice a client going away, and a
// deadline left there would cancel the request.
type deadlines struct {
	rc          *http.ResponseController
	read, write time.Duration
	end         time.Time // zero: none

	mu    sync.Mutex
	ended bool // the request body is at its end (or failed)
	over  bool // the handler has returned (or is returning)
	// bodyErr is why reading the client's body failed (nil at its end):
	// the client's fault, not the upstream's.
	bodyErr error
}

func newDeadlines(w http.ResponseWriter, read, write time.Duration, end time.Time) *deadlines {
	d := &deadlines{rc: http.NewResponseController(w), read: read, write: write, end: end}
	// Writers without deadlines (tests' recorders) answer ErrNotSupported:
	// there is nothing to lift then.
	_ = d.rc.SetReadDeadline(time.Time{})
	_ = d.rc.SetWriteDeadline(time.Time{})
	return d
}

// beforeRead sets the deadline of the next body read; it reports false
// once the exchange is over.
func (d *deadlines) beforeRead() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.over {
		return false
	}
	if d.ended {
		return true
	}
	t := d.end
	if d.read > 0 {
		if next := time.Now().Add(d.read); t.IsZero() || next.Before(t) {
			t = next
		}
	}
	if !t.IsZero() {
		_ = d.rc.SetReadDeadline(t)
	}
	return true
}

// afterRead lifts the read deadline when the body ended (or failed).
func (d *deadlines) afterRead(err error) {
	if err == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.over || d.ended {
		return
	}
	d.ended = true
	if err != io.EOF {
		d.bodyErr = err
	}
	_ = d.rc.SetReadDeadline(time.Time{})
}

// bodyFailed returns why reading the client's body failed, or nil.
func (d *deadlines) bodyFailed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bodyErr
}

// beforeWrite sets the deadline of the next write of the answer. Writes
// happen on the handler's goroutine only.
func (d *deadlines) beforeWrite() {
	if d.write > 0 {
		_ = d.rc.SetWriteDeadline(time.Now().Add(d.write))
	}
}

// finish ends the exchange: the body no longer touches the connection, and
// the server's last flush of the answer gets one more write period.
func (d *deadlines) finish() {
	d.mu.Lock()
	d.over = true
	d.mu.Unlock()
	d.beforeWrite()
}

// deadlineBody is a request body read under deadlines.
type deadlineBody struct {
	io.ReadCloser
	d *deadlines
}

// Read reads under the read deadline.
func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.d.beforeRead() {
		return 0, errExchangeOver
	}
	n, err := b.ReadCloser.Read(p)
	b.d.afterRead(err)
	return n, err
}

// deadlineWriter is a response writer whose writes run under deadlines.
type deadlineWriter struct {
	http.ResponseWriter
	d *deadlines
}

// Write writes under the write deadline.
func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.d.beforeWrite()
	return w.ResponseWriter.Write(p)
}

// FlushError flushes under the write deadline (http.ResponseController
// calls it).
func (w *deadlineWriter) FlushError() error {
	w.d.beforeWrite()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
