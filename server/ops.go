package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// opsPaths are the operations endpoints: with Config.OpsAddr they are
// served on the ops listener only.
var opsPaths = []string{"/metrics", "/healthz", "/readyz"}

// registerOps adds the operations endpoints to mux.
func (s *Server) registerOps(mux *http.ServeMux) {
	mux.Handle("GET /metrics", s.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
}

// publicOps adds the operations endpoints to the public listener's mux:
// the endpoints themselves, or, when they have a listener of their own, a
// 404 for every method (so that the gateway never proxies them either;
// notOwn keeps their other spellings from it).
func (s *Server) publicOps(mux *http.ServeMux) {
	if s.cfg.OpsAddr == "" {
		s.registerOps(mux)
		return
	}
	for _, p := range opsPaths {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			httpx.Error(w, r, gatehouse.NotFound("route"))
		})
	}
}

// openOps starts listening on the ops address, when one is set, with a
// handler of the operations endpoints alone (plain HTTP, the same request
// logs and metrics as the public listener).
func (s *Server) openOps() error {
	if s.cfg.OpsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.OpsAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	s.registerOps(mux)
	s.ops = &http.Server{
		Handler:           httpx.Requests(s.forwarding(), s.logger, s.answered, httpx.Recover(httpx.JSONMux(mux, nil))),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.opsListener = ln
	return nil
}

// serveOps serves the ops listener until Shutdown or Close.
func (s *Server) serveOps() {
	if s.ops == nil {
		return
	}
	if err := s.ops.Serve(s.opsListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.logger.Error("ops listener stopped", "addr", s.opsListener.Addr().String(), "err", err)
	}
}

// OpsAddr returns the address the ops listener listens on (after Open), or
// "" when there is none.
func (s *Server) OpsAddr() string {
	if s.opsListener == nil {
		return ""
	}
	return s.opsListener.Addr().String()
}
