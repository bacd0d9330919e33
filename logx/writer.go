// Package logx is the server's log: slog's text and JSON handlers writing
// through a buffered Writer, and Line, an allocation-free encoder of a log
// line in exactly the bytes slog's handler would write, for the line
// written once per request. Request lines wait in the buffer at most
// FlushInterval (a 5xx line, or one at warning level, not at all); lines
// logged through slog, and the buffer on Close, are written out at once.
package logx

import (
	"io"
	"sync"
	"time"
)

// FlushInterval is how long a line may wait in a Writer's buffer before it
// is written out.
const FlushInterval = 100 * time.Millisecond

// flushSize is the buffer size at which a write flushes at once, so that a
// burst of lines costs bounded memory and loses little in a crash.
const flushSize = 64 << 10

// keepSize bounds the buffer kept for reuse after a flush.
const keepSize = 1 << 20

// A Writer buffers what is written to it and writes it to its output in
// one system call per flush: FlushInterval after the first write into an
// empty buffer, when the buffer reaches 64 KiB, on Flush and on Close.
// Lines reach the output in the order they were written. A crash of the
// process loses what the buffer holds (at most FlushInterval's worth, and
// at most 64 KiB); Flush and Close lose nothing. It is safe for concurrent
// use; the zero value is not usable (NewWriter).
type Writer struct {
	out   io.Writer
	every time.Duration

	mu     sync.Mutex // guards buf, armed, timer, closed
	buf    []byte
	armed  bool
	timer  *time.Timer
	closed bool

	wmu   sync.Mutex // orders writes to out; guards spare
	spare []byte
}

// NewWriter returns a Writer to out that flushes every interval (0 means
// FlushInterval). It starts nothing: the timer is made by the first write.
func NewWriter(out io.Writer, interval time.Duration) *Writer {
	if interval <= 0 {
		interval = FlushInterval
	}
	return &Writer{out: out, every: interval}
}

// Write adds p to the buffer. It never fails: an error of the output is
// returned by the flush that meets it. After Close, p is written out at
// once.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	now := w.closed || len(w.buf) >= flushSize
	if !now && !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(w.every, w.tick)
		} else {
			w.timer.Reset(w.every)
		}
	}
	w.mu.Unlock()
	if now {
		w.Flush()
	}
	return len(p), nil
}

// tick is the timer's flush.
func (w *Writer) tick() {
	w.mu.Lock()
	w.armed = false
	w.mu.Unlock()
	w.Flush()
}

// Flush writes out everything written so far, in one write, and returns
// the output's error.
func (w *Writer) Flush() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	b := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	var err error
	if len(b) > 0 {
		_, err = w.out.Write(b)
	}
	if cap(b) <= keepSize {
		w.spare = b[:0]
	} else {
		w.spare = nil
	}
	return err
}

// Close flushes the buffer and stops the timer; whatever is written
// afterwards goes out at once. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.armed = false
	w.mu.Unlock()
	return w.Flush()
}
