package psc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// minKeyRefresh is the least time between two fetches of PSC's key set
// caused by a token naming an unknown kid. go-oidc's RemoteKeySet fetches
// again on every unknown kid; here the back-channel logout endpoint takes
// tokens from anyone, and each forged kid must not become a request to
// PSC. A real rotation is picked up by the first token after it.
const minKeyRefresh = 10 * time.Second

// keySet is PSC's JWKS, cached and fetched again on an unknown kid (at
// most once per minKeyRefresh). It implements oidc.KeySet.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	algs   []jose.SignatureAlgorithm

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	attempted time.Time // last fetch attempt; zero before the first
}

func newKeySet(url string, client *http.Client, now func() time.Time, algs []string) *keySet {
	ks := &keySet{url: url, client: client, now: now}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// VerifySignature checks a compact JWS and returns its payload.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("expected exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := verifyWith(jws, kid, k.keys); ok {
		return p, nil
	}
	now := k.now()
	if !k.attempted.IsZero() && now.Sub(k.attempted) < minKeyRefresh {
		return nil, fmt.Errorf("no key of PSC verifies the signature (kid %q)", kid)
	}
	k.attempted = now
	keys, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	k.keys = keys
	if p, ok := verifyWith(jws, kid, keys); ok {
		return p, nil
	}
	return nil, fmt.Errorf("no key of PSC verifies the signature (kid %q)", kid)
}

func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for i := range keys {
		key := &keys[i]
		if kid != "" && key.KeyID != kid || key.Use == "enc" {
			continue
		}
		if p, err := jws.Verify(key); err == nil {
			return p, true
		}
	}
	return nil, false
}

// fetch reads the JWKS, skipping keys it cannot use (Keycloak also lists
// encryption keys and algorithms go-jose may not know).
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, unavailable("keys %s: %v", k.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, unavailable("keys %s unreachable: %v", k.url, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, unavailable("keys %s: reading: %v", k.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable("keys %s answered HTTP %d", k.url, resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, unavailable("keys %s: invalid JSON: %v", k.url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, unavailable("keys %s: no usable public key", k.url)
	}
	return keys, nil
}
