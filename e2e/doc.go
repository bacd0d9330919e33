// Package e2e holds end-to-end tests that run a real Gatehouse server on a
// free port, with SQLite in a temporary directory, and talk to it over HTTP.
package e2e
