package oidc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"

	"github.com/garde-sso/garde/broker/store"
)

// Storage adapts Garde's two stores to fosite's storage interfaces.
//
// Short-lived values (codes, PKCE challenges, OIDC request state, PAR
// requests, access tokens, JWT replay ids) live in the ephemeral store with
// a TTL; refresh-token families live in the durable store. fosite.Request
// does not survive a JSON round trip, so each value is stored as a
// requestRecord and rebuilt around the session fosite hands in.
type Storage struct {
	clients map[string]*Client
	eph     store.Ephemeral
	refresh store.RefreshTokens
	now     func() time.Time
	// maxTTL bounds what is kept for values without an expiry.
	codeTTL, accessTTL, refreshTTL time.Duration
}

// StorageOptions configure a Storage.
type StorageOptions struct {
	Clients        []*Client
	Ephemeral      store.Ephemeral
	RefreshTokens  store.RefreshTokens
	Clock          func() time.Time
	CodeLifetime   time.Duration
	AccessLifetime time.Duration
	// RefreshLifetime is the refresh-token lifetime.
	RefreshLifetime time.Duration
}

// NewStorage builds the fosite storage adapter.
func NewStorage(o StorageOptions) *Storage {
	s := &Storage{
		clients:    make(map[string]*Client, len(o.Clients)),
		eph:        o.Ephemeral,
		refresh:    o.RefreshTokens,
		now:        o.Clock,
		codeTTL:    o.CodeLifetime,
		accessTTL:  o.AccessLifetime,
		refreshTTL: o.RefreshLifetime,
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, c := range o.Clients {
		s.clients[c.GetID()] = c
	}
	return s
}

var (
	_ fosite.ClientManager               = (*Storage)(nil)
	_ fosite.PARStorage                  = (*Storage)(nil)
	_ oauth2.CoreStorage                 = (*Storage)(nil)
	_ oauth2.TokenRevocationStorage      = (*Storage)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Storage)(nil)
	_ pkce.PKCERequestStorage            = (*Storage)(nil)
)

// Key prefixes in the ephemeral store.
const (
	keyCode        = "oidc:code:"
	keyCodeUsed    = "oidc:codeused:"
	keyAccess      = "oidc:at:"
	keyAccessRevok = "oidc:atrev:"
	keyPKCE        = "oidc:pkce:"
	keyOIDCReq     = "oidc:oidc:"
	keyPAR         = "oidc:par:"
	keyJTI         = "oidc:jti:"
)

// errCodeReused reports that a code was redeemed by a concurrent request
// between fosite's read and its invalidation. The token endpoint turns it
// into invalid_grant and revokes what the code issued.
var errCodeReused = errors.New("authorization code already used")

// Client returns a registered client.
func (s *Storage) Client(id string) (*Client, bool) {
	c, ok := s.clients[id]
	return c, ok
}

// GetClient implements fosite.ClientManager.
func (s *Storage) GetClient(_ context.Context, id string) (fosite.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return c, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager: a private_key_jwt
// assertion id may be used once.
func (s *Storage) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	_, err := s.eph.Get(ctx, keyJTI+jti)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return fosite.ErrJTIKnown
}

// SetClientAssertionJWT implements fosite.ClientManager. SetNX makes the
// check-and-mark atomic across replicas.
func (s *Storage) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	// The assertion's own exp sets how long its id is remembered, capped:
	// a client may sign one valid for centuries, and a day of memory is
	// plenty since fosite refuses assertions older than that anyway.
	ttl := min(exp.Sub(s.now()), 24*time.Hour)
	if ttl <= 0 {
		ttl = time.Second
	}
	ok, err := s.eph.SetNX(ctx, keyJTI+jti, []byte{1}, ttl)
	if err != nil {
		return err
	}
	if !ok {
		return fosite.ErrJTIKnown
	}
	return nil
}

// requestRecord is the stored form of a fosite request.
type requestRecord struct {
	ID                string     `json:"id"`
	RequestedAt       time.Time  `json:"at"`
	ClientID          string     `json:"client"`
	RequestedScope    []string   `json:"rs,omitempty"`
	GrantedScope      []string   `json:"gs,omitempty"`
	RequestedAudience []string   `json:"ra,omitempty"`
	GrantedAudience   []string   `json:"ga,omitempty"`
	Form              url.Values `json:"form,omitempty"`
	// Session is framed after the record, not inside it: a json.RawMessage
	// field is re-validated and compacted on every Marshal, which was the
	// largest single cost of a code flow.
	Session []byte `json:"-"`
	// IssuedNano orders an access token against a revocation of its grant.
	IssuedNano int64 `json:"issued,omitempty"`

	// Authorization-request fields, kept for PAR.
	ResponseTypes []string `json:"rt,omitempty"`
	RedirectURI   string   `json:"redirect,omitempty"`
	State         string   `json:"state,omitempty"`
	ResponseMode  string   `json:"rm,omitempty"`
}

func newRecord(r fosite.Requester) (*requestRecord, error) {
	rec, err := newRecordMeta(r)
	if err != nil {
		return nil, err
	}
	if rec.Session, err = json.Marshal(r.GetSession()); err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	return rec, nil
}

func newRecordMeta(r fosite.Requester) (*requestRecord, error) {
	rec := &requestRecord{
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt(),
		RequestedScope:    r.GetRequestedScopes(),
		GrantedScope:      r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              sanitizeForm(r.GetRequestForm()),
	}
	if c := r.GetClient(); c != nil {
		rec.ClientID = c.GetID()
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		rec.ResponseTypes = ar.GetResponseTypes()
		if u := ar.GetRedirectURI(); u != nil {
			rec.RedirectURI = u.String()
		}
		rec.State = ar.GetState()
		rec.ResponseMode = string(ar.GetResponseMode())
	}
	return rec, nil
}

// sanitizeForm drops credentials fosite may leave in a request form: they
// must never be stored.
func sanitizeForm(f url.Values) url.Values {
	out := make(url.Values, len(f))
	for k, v := range f {
		switch k {
		case "client_secret", "code", "refresh_token", "code_verifier", "client_assertion", "password", "token":
			continue
		}
		out[k] = v
	}
	return out
}

// decodeCache remembers, for one HTTP request, the sessions already
// decoded: a token request reads the same session from the code, the PKCE
// and the OpenID Connect records, and fosite reads the code twice.
type decodeCache struct {
	sessions map[string]*Session
	records  map[string]*requestRecord
}

type decodeCacheKey struct{}

// WithDecodeCache returns a context in which Storage decodes each stored
// session once.
func WithDecodeCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, decodeCacheKey{}, &decodeCache{sessions: map[string]*Session{}, records: map[string]*requestRecord{}})
}

// decodeSession fills session from raw, through the request's cache when
// the session is Garde's own type.
func decodeSession(ctx context.Context, raw []byte, session fosite.Session) error {
	dst, ok := session.(*Session)
	cache, _ := ctx.Value(decodeCacheKey{}).(*decodeCache)
	if !ok || cache == nil {
		return json.Unmarshal(raw, session)
	}
	if cached, hit := cache.sessions[string(raw)]; hit {
		// Behave as json.Unmarshal into dst would: it adds to a non-nil
		// map rather than replacing it, and fosite relies on that when it
		// reads a code a second time after setting the access-token expiry
		// on the session.
		prev := dst.ExpiresAt
		*dst = *cached.Clone().(*Session)
		for k, v := range prev {
			if _, set := dst.ExpiresAt[k]; !set {
				dst.SetExpiresAt(k, v)
			}
		}
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return err
	}
	cache.sessions[string(raw)] = dst.Clone().(*Session)
	return nil
}

// request rebuilds a fosite request around session (fosite's own value, so
// its concrete type is the one fosite expects).
func (s *Storage) request(ctx context.Context, rec *requestRecord, session fosite.Session) (*fosite.Request, error) {
	c, ok := s.clients[rec.ClientID]
	if !ok {
		return nil, fmt.Errorf("stored request names unknown client %q: %w", rec.ClientID, fosite.ErrNotFound)
	}
	if session == nil {
		session = NewSession()
	}
	// Records stored without their session (PKCE, OpenID Connect request
	// state) take the one fosite hands in: the code's.
	if len(rec.Session) > 0 {
		if err := decodeSession(ctx, rec.Session, session); err != nil {
			return nil, fmt.Errorf("decode stored session: %w", err)
		}
	}
	return &fosite.Request{
		ID:                rec.ID,
		RequestedAt:       rec.RequestedAt,
		Client:            c,
		RequestedScope:    rec.RequestedScope,
		GrantedScope:      rec.GrantedScope,
		RequestedAudience: rec.RequestedAudience,
		GrantedAudience:   rec.GrantedAudience,
		Form:              rec.Form,
		Session:           session,
	}, nil
}

func (s *Storage) put(ctx context.Context, key string, r fosite.Requester, ttl time.Duration) error {
	rec, err := newRecord(r)
	if err != nil {
		return err
	}
	return s.putRecord(ctx, key, rec, ttl)
}

// putWithoutSession stores a request whose session is the authorization
// code's: fosite reads PKCE and OpenID Connect request state back with the
// session it loaded from the code, so storing it three times would only
// cost three encodings per authorization.
func (s *Storage) putWithoutSession(ctx context.Context, key string, r fosite.Requester, ttl time.Duration) error {
	rec, err := newRecordMeta(r)
	if err != nil {
		return err
	}
	return s.putRecord(ctx, key, rec, ttl)
}

// encodeRecord frames a record as uvarint(len(meta)) || meta || session.
func encodeRecord(rec *requestRecord) ([]byte, error) {
	meta, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	b := make([]byte, 0, binary.MaxVarintLen64+len(meta)+len(rec.Session))
	b = binary.AppendUvarint(b, uint64(len(meta)))
	b = append(b, meta...)
	return append(b, rec.Session...), nil
}

func decodeRecord(b []byte) (*requestRecord, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, errors.New("decode request: bad framing")
	}
	var rec requestRecord
	if err := json.Unmarshal(b[k:k+int(n)], &rec); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	rec.Session = b[k+int(n):]
	return &rec, nil
}

func (s *Storage) putRecord(ctx context.Context, key string, rec *requestRecord, ttl time.Duration) error {
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		ttl = time.Second
	}
	return s.eph.Set(ctx, key, b, ttl)
}

func (s *Storage) getRecord(ctx context.Context, key string) (*requestRecord, []byte, error) {
	b, err := s.eph.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fosite.ErrNotFound
	} else if err != nil {
		return nil, nil, err
	}
	rec, err := decodeCachedRecord(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	return rec, b, nil
}

// decodeCachedRecord decodes a record once per request (see decodeCache).
// Callers get their own copy: they may change it.
func decodeCachedRecord(ctx context.Context, b []byte) (*requestRecord, error) {
	cache, _ := ctx.Value(decodeCacheKey{}).(*decodeCache)
	if cache != nil {
		if rec, hit := cache.records[string(b)]; hit {
			return rec.clone(), nil
		}
	}
	rec, err := decodeRecord(b)
	if err != nil {
		return nil, err
	}
	if cache != nil {
		cache.records[string(b)] = rec.clone()
	}
	return rec, nil
}

func (r *requestRecord) clone() *requestRecord {
	c := *r
	c.RequestedScope = slices.Clone(r.RequestedScope)
	c.GrantedScope = slices.Clone(r.GrantedScope)
	c.RequestedAudience = slices.Clone(r.RequestedAudience)
	c.GrantedAudience = slices.Clone(r.GrantedAudience)
	c.ResponseTypes = slices.Clone(r.ResponseTypes)
	c.Form = make(url.Values, len(r.Form))
	for k, v := range r.Form {
		c.Form[k] = slices.Clone(v)
	}
	return &c
}

func (s *Storage) get(ctx context.Context, key string, session fosite.Session) (fosite.Requester, error) {
	rec, _, err := s.getRecord(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.request(ctx, rec, session)
}

// ttlUntil is the time left until the session's expiry for tt, or fallback.
func (s *Storage) ttlUntil(r fosite.Requester, tt fosite.TokenType, fallback time.Duration) time.Duration {
	now := s.now()
	if sess, ok := r.GetSession().(*Session); ok {
		if exp := sess.expiresAt(tt, time.Time{}); !exp.IsZero() {
			// Keep the record a little past expiry: fosite reports "expired"
			// rather than "not found" while it can still read it.
			return exp.Sub(now) + time.Minute
		}
	}
	return fallback
}

// --- authorization codes -------------------------------------------------

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *Storage) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.put(ctx, keyCode+signature, r, s.ttlUntil(r, fosite.AuthorizeCode, s.codeTTL))
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. A used code
// is kept (inactive) so that a second redemption is detected as reuse and
// fosite revokes the tokens the first one issued.
func (s *Storage) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	rec, _, err := s.getRecord(ctx, keyCode+signature)
	if err != nil {
		return nil, err
	}
	req, err := s.request(ctx, rec, session)
	if err != nil {
		return nil, err
	}
	switch _, err := s.eph.Get(ctx, keyCodeUsed+signature); {
	case err == nil:
		return req, fosite.ErrInvalidatedAuthorizeCode
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. The
// "used" marker is created with SetNX, so of two concurrent redemptions
// exactly one proceeds to issue tokens; the code itself is kept, so that a
// later redemption is recognised as reuse.
func (s *Storage) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	ok, err := s.eph.SetNX(ctx, keyCodeUsed+signature, []byte{1}, s.codeTTL+time.Minute)
	if err != nil {
		return err
	}
	if !ok {
		return errCodeReused
	}
	return nil
}

// codeRequestID returns the grant id of a code, for revocation after a
// concurrent reuse.
func (s *Storage) codeRequestID(ctx context.Context, signature string) (string, error) {
	rec, _, err := s.getRecord(ctx, keyCode+signature)
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// --- PKCE and OpenID Connect request state --------------------------------

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Storage) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.putWithoutSession(ctx, keyPKCE+signature, r, s.ttlUntil(r, fosite.AuthorizeCode, s.codeTTL))
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (s *Storage) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, keyPKCE+signature, session)
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Storage) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.eph.Delete(ctx, keyPKCE+signature)
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Storage) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.putWithoutSession(ctx, keyOIDCReq+code, r, s.ttlUntil(r, fosite.AuthorizeCode, s.codeTTL))
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Storage) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	req, err := s.get(ctx, keyOIDCReq+code, r.GetSession())
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, openid.ErrNoSessionFound
	}
	return req, err
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Storage) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.eph.Delete(ctx, keyOIDCReq+code)
}

// --- PAR -------------------------------------------------------------------

// CreatePARSession implements fosite.PARStorage.
func (s *Storage) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return s.put(ctx, keyPAR+requestURI, r, s.codeTTL*10)
}

// GetPARSession implements fosite.PARStorage.
func (s *Storage) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	rec, _, err := s.getRecord(ctx, keyPAR+requestURI)
	if err != nil {
		return nil, err
	}
	req, err := s.request(ctx, rec, nil)
	if err != nil {
		return nil, err
	}
	ar := &fosite.AuthorizeRequest{
		ResponseTypes:        rec.ResponseTypes,
		State:                rec.State,
		ResponseMode:         fosite.ResponseModeType(rec.ResponseMode),
		HandledResponseTypes: fosite.Arguments{},
		Request:              *req,
	}
	if rec.RedirectURI != "" {
		if ar.RedirectURI, err = url.Parse(rec.RedirectURI); err != nil {
			return nil, fmt.Errorf("stored PAR redirect URI: %w", err)
		}
	}
	return ar, nil
}

// DeletePARSession implements fosite.PARStorage.
func (s *Storage) DeletePARSession(ctx context.Context, requestURI string) error {
	return s.eph.Delete(ctx, keyPAR+requestURI)
}

// --- access tokens ----------------------------------------------------------

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Storage) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	rec, err := newRecord(r)
	if err != nil {
		return err
	}
	// Wall-clock nanoseconds, not the injectable clock: this only orders a
	// token against a revocation of its grant on the same timeline.
	rec.IssuedNano = time.Now().UnixNano()
	return s.putRecord(ctx, keyAccess+signature, rec, s.ttlUntil(r, fosite.AccessToken, s.accessTTL))
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage. A token whose
// grant was revoked after it was issued reads as inactive.
func (s *Storage) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	rec, _, err := s.getRecord(ctx, keyAccess+signature)
	if err != nil {
		return nil, err
	}
	revoked, err := s.eph.Get(ctx, keyAccessRevok+rec.ID)
	if err == nil {
		if at, perr := strconv.ParseInt(string(revoked), 10, 64); perr == nil && rec.IssuedNano <= at {
			return nil, fosite.ErrInactiveToken
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return s.request(ctx, rec, session)
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Storage) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.eph.Delete(ctx, keyAccess+signature)
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage: every access
// token of the grant issued up to now becomes inactive. Tokens are JWTs that
// resource servers may validate offline, so they are short-lived; the
// tombstone lives as long as the longest of them.
func (s *Storage) RevokeAccessToken(ctx context.Context, requestID string) error {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	return s.eph.Set(ctx, keyAccessRevok+requestID, []byte(now), s.accessTTL+time.Minute)
}

// --- refresh tokens ---------------------------------------------------------

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Storage) CreateRefreshTokenSession(ctx context.Context, signature, _ string, r fosite.Requester) error {
	rec, err := newRecord(r)
	if err != nil {
		return err
	}
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	now := s.now()
	exp := now.Add(s.refreshTTL)
	sid := ""
	subject := ""
	if sess, ok := r.GetSession().(*Session); ok {
		exp = sess.expiresAt(fosite.RefreshToken, exp)
		sid = sess.SID
		subject = sess.GetSubject()
	}
	return s.refresh.CreateRefreshToken(ctx, store.RefreshToken{
		Signature: signature,
		RequestID: rec.ID,
		ClientID:  rec.ClientID,
		Subject:   subject,
		SessionID: sid,
		Active:    true,
		Data:      b,
		CreatedAt: now,
		ExpiresAt: exp,
	})
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A rotated
// token is returned with ErrInactiveToken so that fosite treats its use as
// reuse and revokes the whole family.
func (s *Storage) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	t, err := s.refresh.GetRefreshToken(ctx, signature)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fosite.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	rec, err := decodeRecord(t.Data)
	if err != nil {
		return nil, fmt.Errorf("refresh token %w", err)
	}
	req, err := s.request(ctx, rec, session)
	if err != nil {
		return nil, err
	}
	if !t.Active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Storage) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.refresh.DeleteRefreshToken(ctx, signature)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: the presented
// token becomes inactive (kept for reuse detection). Of two concurrent
// refreshes with one token, exactly one wins; the other is told to retry
// and, on retry, is caught as reuse.
func (s *Storage) RotateRefreshToken(ctx context.Context, _ string, signature string) error {
	ok, err := s.refresh.DeactivateRefreshToken(ctx, signature)
	if errors.Is(err, store.ErrNotFound) {
		return fosite.ErrNotFound
	} else if err != nil {
		return err
	}
	if !ok {
		return fosite.ErrSerializationFailure
	}
	return nil
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: the whole
// family goes.
func (s *Storage) RevokeRefreshToken(ctx context.Context, requestID string) error {
	_, err := s.refresh.RevokeRefreshTokenFamily(ctx, requestID)
	return err
}

// RevokeRefreshTokenMaybeGracePeriod implements oauth2.TokenRevocationStorage.
// Garde has no grace period: a rotated token is dead at once.
func (s *Storage) RevokeRefreshTokenMaybeGracePeriod(ctx context.Context, requestID string, _ string) error {
	return s.RevokeRefreshToken(ctx, requestID)
}
