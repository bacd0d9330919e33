package logx

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Handler is a slog.Handler writing slog's text or JSON format to a Writer.
// What is logged through slog is flushed at once. A Handler made by New
// (not one derived with WithAttrs or WithGroup) also hands out Lines, for
// the line written once per request: they write the same bytes as slog
// without slog's per-attribute work, and wait in the Writer's buffer (at
// most its interval) unless ended with a flush or at warning level or
// above. It is safe for concurrent use.
type Handler struct {
	inner slog.Handler
	w     *Writer
	json  bool
	level slog.Leveler
	// derived is set on handlers made by WithAttrs or WithGroup: their
	// lines carry attributes a Line does not know of.
	derived bool
}

// New returns a handler writing to w in slog's JSON format when json is
// set, else its text format, at level and above (nil: info). Its logger is
// slog.New(h).
func New(w *Writer, json bool, level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var inner slog.Handler
	if json {
		inner = slog.NewJSONHandler(w, opts)
	} else {
		inner = slog.NewTextHandler(w, opts)
	}
	return &Handler{inner: inner, w: w, json: json, level: level}
}

// Enabled reports whether level is logged.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle writes r and flushes it, with every line before it, before it
// returns: lines logged through slog (start, stop, reloads, warnings,
// errors) are rare and wanted at once; only Lines wait in the buffer.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.inner.Handle(ctx, r)
	if ferr := h.w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// WithAttrs returns a handler whose lines carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(attrs), w: h.w, json: h.json, level: h.level, derived: true}
}

// WithGroup returns a handler whose attributes are in the group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), w: h.w, json: h.json, level: h.level, derived: true}
}

// Flush writes out every line handled so far.
func (h *Handler) Flush() error { return h.w.Flush() }

var linePool = sync.Pool{New: func() any { return &Line{buf: make([]byte, 0, 512)} }}

// Line starts a line at level with message msg, or returns nil when level
// is not logged or h was derived (then log through slog). Add its
// attributes and End it; a Line must not be used after End. The time is
// taken now.
func (h *Handler) Line(ctx context.Context, level slog.Level, msg string) *Line {
	if h.derived || !h.Enabled(ctx, level) {
		return nil
	}
	return h.lineAt(level, msg, time.Now())
}

// lineAt starts a line with the time t.
func (h *Handler) lineAt(level slog.Level, msg string, t time.Time) *Line {
	l := linePool.Get().(*Line)
	l.h, l.level = h, level
	b := l.buf[:0]
	if h.json {
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"`...)
		b = append(b, level.String()...)
		b = append(b, `","msg":`...)
	} else {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, t)
		b = append(b, " level="...)
		b = append(b, level.String()...)
		b = append(b, " msg="...)
	}
	l.buf = l.appendString(b, msg)
	return l
}

// A Line is one log line being encoded (Handler.Line). Its attributes are
// written in the order they are added, as slog's handler writes them.
type Line struct {
	h     *Handler
	level slog.Level
	buf   []byte
}

// key appends the separator and key.
func (l *Line) key(k string) {
	if l.h.json {
		l.buf = append(l.buf, ',')
	} else {
		l.buf = append(l.buf, ' ')
	}
	l.buf = l.appendString(l.buf, k)
	if l.h.json {
		l.buf = append(l.buf, ':')
	} else {
		l.buf = append(l.buf, '=')
	}
}

// String adds a string attribute, as slog.String.
func (l *Line) String(key, v string) {
	l.key(key)
	l.buf = l.appendString(l.buf, v)
}

// Int adds an integer attribute, as slog.Int.
func (l *Line) Int(key string, v int) {
	l.key(key)
	l.buf = strconv.AppendInt(l.buf, int64(v), 10)
}

// Float adds a floating-point attribute, as slog.Float64; v must be
// finite.
func (l *Line) Float(key string, v float64) {
	l.key(key)
	if l.h.json {
		l.buf = appendJSONFloat(l.buf, v)
	} else {
		l.buf = strconv.AppendFloat(l.buf, v, 'g', -1, 64)
	}
}

// End finishes the line and hands it to the Writer; the line is flushed
// at once when flush is set or its level is a warning or above.
func (l *Line) End(flush bool) {
	if l.h.json {
		l.buf = append(l.buf, '}')
	}
	l.buf = append(l.buf, '\n')
	w := l.h.w
	w.Write(l.buf)
	if flush || l.level >= slog.LevelWarn {
		w.Flush()
	}
	l.h = nil
	if cap(l.buf) <= 4<<10 {
		linePool.Put(l)
	}
}

// appendString appends s as slog's handler writes a string (a key or a
// value) in the line's format.
func (l *Line) appendString(b []byte, s string) []byte {
	if l.h.json {
		b = append(b, '"')
		b = appendEscapedJSONString(b, s)
		return append(b, '"')
	}
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// appendRFC3339Millis is slog's text time: RFC 3339 with exactly three
// digits of milliseconds.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// appendJSONFloat is encoding/json's float64, which slog's JSON handler
// uses: ES6 number form, 'e' only for very small or very large values.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// needsQuoting is slog's text rule for quoting a string.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if !bare[b] {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// safe reports whether an ASCII byte is written as itself in a JSON
// string: everything but the control characters, " and \.
func safe(b byte) bool { return jsonSafe[b] }

// jsonSafe and bare are, for each ASCII byte, whether it is written as
// itself in a JSON string, and whether it leaves a text value unquoted
// (safe in JSON, or a backslash; not a space or =).
var jsonSafe, bare = func() (j, t [utf8.RuneSelf]bool) {
	for b := range utf8.RuneSelf {
		j[b] = b >= 0x20 && b != '"' && b != '\\'
		t[b] = b == '\\' || (j[b] && b != ' ' && b != '=')
	}
	return j, t
}()

const hexDigits = "0123456789abcdef"

// appendEscapedJSONString is slog's JSON string escaping.
func appendEscapedJSONString(buf []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if safe(b) {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\')
			switch b {
			case '\\', '"':
				buf = append(buf, b)
			case '\n':
				buf = append(buf, 'n')
			case '\r':
				buf = append(buf, 'r')
			case '\t':
				buf = append(buf, 't')
			default:
				buf = append(buf, 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\u202`...)
			buf = append(buf, hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(buf, s[start:]...)
}

// Open returns a logger writing slog's JSON format when json is set, else
// its text format, to out at level and above (nil: info), and a function
// that flushes and stops the buffer (call it before exit). out is buffered
// by a Writer flushing every FlushInterval, unless it is a *Writer
// already.
func Open(out io.Writer, json bool, level slog.Leveler) (*slog.Logger, func() error) {
	w, ok := out.(*Writer)
	if !ok {
		w = NewWriter(out, FlushInterval)
	}
	return slog.New(New(w, json, level)), w.Close
}
