package leak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// DefaultGitHubKeys is where GitHub publishes the keys that sign secret
// scanning alerts.
const DefaultGitHubKeys = "https://api.github.com/meta/public_keys/secret_scanning"

// githubWorkers is how many tokens of one GitHub batch are revoked at
// once.
const githubWorkers = 8

// keysRefresh bounds how often an unknown key identifier makes the keys be
// read again, so that forged identifiers cannot make every request fetch.
const keysRefresh = 30 * time.Second

// GitHubKeys are GitHub's secret scanning public keys, read from a URL or
// a file in GitHub's JSON shape, cached, and read again when a signature
// names an identifier not among them (at most once per keysRefresh). It is
// safe for concurrent use.
type GitHubKeys struct {
	source string
	client *http.Client
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
	read time.Time
}

// NewGitHubKeys returns the keys at source: an http(s) URL or a file path
// ("" means DefaultGitHubKeys).
func NewGitHubKeys(source string) *GitHubKeys {
	if source == "" {
		source = DefaultGitHubKeys
	}
	return &GitHubKeys{source: source, client: &http.Client{Timeout: 10 * time.Second}, now: time.Now}
}

// githubKeyList is GitHub's JSON shape of its public keys.
type githubKeyList struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// Key returns the public key with identifier id.
func (k *GitHubKeys) Key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[id]; ok {
		return key, nil
	}
	// The bound holds from the first read, whether or not it succeeded:
	// while the keys cannot be read, requests must not each try.
	if !k.read.IsZero() && k.now().Sub(k.read) < keysRefresh {
		return nil, fmt.Errorf("unknown key identifier")
	}
	keys, err := k.fetch(ctx)
	k.read = k.now()
	if err != nil {
		return nil, err
	}
	k.keys = keys
	if key, ok := keys[id]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("unknown key identifier")
}

// fetch reads and parses the key list.
func (k *GitHubKeys) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	var body []byte
	var err error
	if strings.HasPrefix(k.source, "https://") || strings.HasPrefix(k.source, "http://") {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, k.source, nil)
		if rerr != nil {
			return nil, rerr
		}
		resp, derr := k.client.Do(req)
		if derr != nil {
			return nil, derr
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("github keys: %s answered %d", k.source, resp.StatusCode)
		}
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	} else {
		body, err = os.ReadFile(k.source)
	}
	if err != nil {
		return nil, err
	}
	var list githubKeyList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("github keys: %w", err)
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, pk := range list.PublicKeys {
		block, _ := pem.Decode([]byte(pk.Key))
		if block == nil {
			continue
		}
		parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
		if key, ok := parsed.(*ecdsa.PublicKey); err == nil && ok && key.Curve == elliptic.P256() {
			out[pk.KeyIdentifier] = key
		}
	}
	return out, nil
}

// GitHub serves POST /v1/secret-scanning/github: GitHub's secret scanning
// partner programme posts the tokens it found in public places.
type GitHub struct {
	Service *service.Service
	Keys    *GitHubKeys
}

// githubMatch is one token GitHub reports.
type githubMatch struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// githubLabel is the answer for one reported token.
type githubLabel struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// ServeHTTP verifies the batch's ECDSA P-256 / SHA-256 signature over the
// raw body before reading anything in it (401 unauthorized, nothing
// revoked, when it is missing or wrong), then revokes each token as the
// owning account's leak_policy says and answers one label per token:
// true_positive for a secret this server issued, false_positive for any
// other string.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBodyBytes))
	if err != nil {
		httpx.Error(w, r, gatehouse.Errorf(gatehouse.EPayloadTooLarge, "Request body is larger than %d bytes", httpx.MaxBodyBytes))
		return
	}
	if err := g.verify(r, body); err != nil {
		httpx.Error(w, r, gatehouse.Errorf(gatehouse.EUnauthorized, "The GitHub signature is missing or does not verify"))
		return
	}
	var batch []githubMatch
	if err := json.Unmarshal(body, &batch); err != nil {
		httpx.Error(w, r, gatehouse.Invalid("The body must be a JSON array of {token, type, url, source}"))
		return
	}
	notify := func(a *gatehouse.Account) bool { return a.Settings.LeakPolicy == gatehouse.LeakNotify }
	// The tokens are revoked githubWorkers at a time, so that a batch of
	// hundreds is answered within GitHub's timeout; the labels keep the
	// batch's order. The first error is the answer.
	out := make([]githubLabel, len(batch))
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		next     = make(chan int)
	)
	for range min(githubWorkers, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				m := batch[i]
				res, err := g.Service.RevokeLeaked(ctx, m.Token, service.LeakReport{Via: service.LeakViaGitHub, URL: m.URL, Source: m.Source, NotifyOnly: notify})
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				sum := sha256.Sum256([]byte(m.Token))
				label := "false_positive"
				if res.Known {
					label = "true_positive"
				}
				out[i] = githubLabel{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: label}
			}
		}()
	}
feed:
	for i := range batch {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		httpx.Error(w, r, firstErr)
		return
	}
	if err := r.Context().Err(); err != nil {
		return // the sender is gone
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// verify checks the request's signature headers against body.
func (g *GitHub) verify(r *http.Request, body []byte) error {
	id, sig := r.Header.Get("Github-Public-Key-Identifier"), r.Header.Get("Github-Public-Key-Signature")
	if id == "" || sig == "" {
		return errors.New("missing signature")
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return err
	}
	key, err := g.Keys.Key(r.Context(), id)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(key, digest[:], der) {
		return errors.New("bad signature")
	}
	return nil
}
