package cps

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Size limits on what a distribution point or responder may send. The
// IGC-Santé CRLs are a few megabytes.
const (
	maxCRLSize  = 64 << 20
	maxOCSPSize = 1 << 20
)

// oidDeltaCRLIndicator marks a delta CRL (RFC 5280 §5.2.4). IGC-Santé
// publishes none, and a delta CRL alone says nothing about certificates
// revoked before its base: it is never used as a complete answer.
var oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// crlEntry is a CRL whose signature has been checked against issuer.
type crlEntry struct {
	crl      *x509.RevocationList
	issuerFP [32]byte
	revoked  map[string]bool // serial numbers, as decimal strings
}

// status is a revocation answer.
type status int

const (
	statusUnknown status = iota
	statusGood
	statusRevoked
)

type ocspKey struct {
	issuerFP [32]byte
	serial   string
}

type ocspTarget struct {
	cert, issuer *x509.Certificate
}

type ocspEntry struct {
	status     status
	thisUpdate time.Time
	// validUntil is nextUpdate, or fetch time + RefreshEvery when the
	// responder gives none.
	validUntil time.Time
}

func fingerprint(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

// ---- the hot path: cache reads only

// checkRevocation accepts the first verified chain whose certificates
// below the root are all known not to be revoked. A revoked answer on any
// chain wins over other errors.
func (c *Connector) checkRevocation(_ context.Context, chains [][]*x509.Certificate, now time.Time) error {
	if c.o.Revocation == RevocationNone {
		return nil
	}
	var first error
	for _, chain := range chains {
		c.learnCAs(chain)
		err := c.checkChain(chain, now)
		if err == nil {
			return nil
		}
		if first == nil || errors.Is(err, ErrRevoked) && !errors.Is(first, ErrRevoked) {
			first = err
		}
	}
	return first
}

// learnCAs records the intermediates of a verified chain as possible CRL
// and OCSP signers, and their distribution points.
func (c *Connector) learnCAs(chain []*x509.Certificate) {
	for _, ca := range chain[1:] {
		fp := fingerprint(ca)
		c.mu.RLock()
		_, known := c.cas[fp]
		c.mu.RUnlock()
		if known {
			continue
		}
		c.mu.Lock()
		c.cas[fp] = ca
		c.mu.Unlock()
		if c.addDPs(ca) {
			c.wake()
		}
	}
}

// checkChain checks every certificate of chain but the root (which is
// trusted by configuration, and revoked only by removing it from there).
func (c *Connector) checkChain(chain []*x509.Certificate, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		what := "card certificate"
		if i > 0 {
			what = fmt.Sprintf("CA certificate %q", cert.Subject.CommonName)
		}
		var st status
		var why string
		switch c.o.Revocation {
		case RevocationCRL:
			st, why = c.crlStatus(cert, issuer, now)
		case RevocationCRLOCSP:
			st, why = c.crlStatus(cert, issuer, now)
			if st == statusUnknown {
				var owhy string
				st, owhy = c.ocspStatus(cert, issuer, now)
				why += "; " + owhy
			}
		case RevocationOCSP:
			st, why = c.ocspStatus(cert, issuer, now)
		}
		switch st {
		case statusRevoked:
			return fmt.Errorf("%w: %s (serial %s) %s", ErrRevoked, what, cert.SerialNumber, why)
		case statusUnknown:
			return fmt.Errorf("%w: %s (serial %s): %s", ErrRevocationUnknown, what, cert.SerialNumber, why)
		}
	}
	return nil
}

// crlStatus answers from the held CRLs that cover cert: those from its
// distribution points and the local files, signed by its issuer.
func (c *Connector) crlStatus(cert, issuer *x509.Certificate, now time.Time) (status, string) {
	if c.addDPs(cert) {
		// A distribution point not seen before: fetch it in the
		// background; this sign-in cannot be answered yet.
		c.wake()
	}
	ifp := fingerprint(issuer)
	var best *crlEntry
	c.mu.RLock()
	for src, e := range c.crls {
		if e.issuerFP != ifp {
			continue
		}
		if !isFileSource(src) && !slices.Contains(cert.CRLDistributionPoints, src) {
			continue
		}
		if e.revoked[cert.SerialNumber.String()] {
			c.mu.RUnlock()
			// Revocation is final: even a stale CRL proves it.
			return statusRevoked, "listed in the CRL from " + src
		}
		if best == nil || e.crl.ThisUpdate.After(best.crl.ThisUpdate) {
			best = e
		}
	}
	c.mu.RUnlock()
	switch {
	case best == nil:
		return statusUnknown, "no CRL from its issuer is held (distribution points not fetched or unreachable)"
	case best.crl.NextUpdate.IsZero() || now.After(best.crl.NextUpdate):
		if c.o.AllowStaleCRL {
			c.log.Warn("cps: accepting a stale CRL (allow_stale_crl)", "issuer", issuer.Subject.String(), "next_update", best.crl.NextUpdate)
			return statusGood, ""
		}
		return statusUnknown, fmt.Sprintf("the newest CRL from its issuer expired at %s", best.crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	return statusGood, ""
}

func (c *Connector) ocspStatus(cert, issuer *x509.Certificate, now time.Time) (status, string) {
	if !slices.ContainsFunc(cert.OCSPServer, isHTTPURL) {
		return statusUnknown, "no OCSP responder in the certificate"
	}
	k := ocspKey{fingerprint(issuer), cert.SerialNumber.String()}
	c.mu.RLock()
	e := c.ocsp[k]
	_, targeted := c.ocspTargets[k]
	c.mu.RUnlock()
	if !targeted {
		c.mu.Lock()
		c.ocspTargets[k] = ocspTarget{cert, issuer}
		c.mu.Unlock()
		c.wake()
	}
	switch {
	case e == nil:
		return statusUnknown, "no OCSP response held yet"
	case e.status == statusRevoked:
		return statusRevoked, "according to OCSP"
	case now.After(e.validUntil):
		return statusUnknown, "the OCSP response held is out of date"
	case e.status == statusUnknown:
		return statusUnknown, "the OCSP responder does not know the certificate"
	}
	return statusGood, ""
}

// addDPs records cert's http distribution points; it reports whether one
// was new.
func (c *Connector) addDPs(cert *x509.Certificate) bool {
	if c.o.Revocation == RevocationNone || c.o.Revocation == RevocationOCSP {
		return false
	}
	var added bool
	for _, u := range cert.CRLDistributionPoints {
		if !isHTTPURL(u) {
			continue // ldap:// points: not fetched
		}
		c.mu.RLock()
		known := c.dps[u]
		c.mu.RUnlock()
		if !known {
			c.mu.Lock()
			c.dps[u] = true
			c.mu.Unlock()
			added = true
		}
	}
	return added
}

func (c *Connector) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// ---- the background: fetching and loading

// Run refreshes the caches until ctx ends: every RefreshEvery, before the
// earliest nextUpdate held, and soon after a sign-in meets a distribution
// point or OCSP target not fetched yet.
func (c *Connector) Run(ctx context.Context) {
	for {
		t := time.NewTimer(c.nextWait())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-c.kick:
			t.Stop()
		}
		err := c.Refresh(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("cps: revocation refresh incomplete", "err", err)
		}
		if c.onRefresh != nil {
			c.onRefresh(err)
		}
	}
}

// nextWait is how long Run sleeps: RefreshEvery, or less to renew a CRL or
// OCSP response before it expires.
func (c *Connector) nextWait() time.Duration {
	now := c.now()
	wait := c.o.RefreshEvery
	c.mu.RLock()
	defer c.mu.RUnlock()
	soon := func(t time.Time) {
		if t.IsZero() {
			return
		}
		// Renew at 90% of the remaining time, so that a slow or briefly
		// unreachable source still has a margin before the cache expires.
		d := t.Sub(now) * 9 / 10
		if d < wait {
			wait = d
		}
	}
	for _, e := range c.crls {
		soon(e.crl.NextUpdate)
	}
	for _, e := range c.ocsp {
		soon(e.validUntil)
	}
	return max(wait, minRefreshWait)
}

// Refresh fetches every known distribution point, re-reads the CRL files
// and asks OCSP about the certificates sign-ins needed it for, now. A
// failed source keeps what was held from it before. The error joins every
// failure; the caches hold whatever succeeded.
func (c *Connector) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	var errs []error
	if err := c.loadCRLFiles(); err != nil {
		errs = append(errs, err)
	}
	c.mu.RLock()
	urls := make([]string, 0, len(c.dps))
	for u := range c.dps {
		urls = append(urls, u)
	}
	targets := make([]ocspTarget, 0, len(c.ocspTargets))
	for _, t := range c.ocspTargets {
		targets = append(targets, t)
	}
	c.mu.RUnlock()
	slices.Sort(urls)
	for _, u := range urls {
		if err := c.fetchCRL(ctx, u); err != nil {
			errs = append(errs, err)
		}
	}
	now := c.now()
	for _, t := range targets {
		if err := c.fetchOCSP(ctx, t, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isFileSource(src string) bool { return len(src) > 5 && src[:5] == "file:" }

func (c *Connector) loadCRLFiles() error {
	var errs []error
	for _, f := range c.o.CRLFiles {
		data, err := os.ReadFile(f)
		if err == nil {
			err = c.storeCRL("file:"+f, data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cps: CRL file %s: %w", f, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Connector) fetchCRL(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("cps: CRL %s: %w", u, err)
	}
	data, err := c.do(req, maxCRLSize)
	if err == nil {
		err = c.storeCRL(u, data)
	}
	if err != nil {
		return fmt.Errorf("cps: CRL %s: %w", u, err)
	}
	return nil
}

func (c *Connector) do(req *http.Request, limit int64) ([]byte, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// storeCRL parses a CRL (DER or PEM), checks it is a complete CRL signed
// by a known CA, and keeps it unless the one already held from src is
// newer (a replayed old CRL must not hide a recent revocation).
func (c *Connector) storeCRL(src string, data []byte) error {
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return fmt.Errorf("PEM block %q is not an X509 CRL", b.Type)
		}
		data = b.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return err
	}
	for _, ext := range crl.Extensions {
		if ext.Id.Equal(oidDeltaCRLIndicator) {
			return errors.New("is a delta CRL; expected a complete CRL")
		}
	}
	issuer := c.crlIssuer(crl)
	if issuer == nil {
		return fmt.Errorf("is not signed by any configured or known CA (issuer %q)", crl.Issuer.String())
	}
	e := &crlEntry{crl: crl, issuerFP: fingerprint(issuer), revoked: make(map[string]bool, len(crl.RevokedCertificateEntries))}
	for _, r := range crl.RevokedCertificateEntries {
		if r.SerialNumber != nil {
			e.revoked[r.SerialNumber.String()] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.crls[src]; old != nil && old.issuerFP == e.issuerFP && old.crl.ThisUpdate.After(crl.ThisUpdate) {
		return fmt.Errorf("is older (thisUpdate %s) than the CRL held; kept the newer one", crl.ThisUpdate.UTC().Format(time.RFC3339))
	}
	c.crls[src] = e
	return nil
}

// crlIssuer returns the known CA whose name and key signed crl.
func (c *Connector) crlIssuer(crl *x509.RevocationList) *x509.Certificate {
	c.mu.RLock()
	cands := make([]*x509.Certificate, 0, len(c.cas))
	for _, ca := range c.cas {
		if bytes.Equal(ca.RawSubject, crl.RawIssuer) {
			cands = append(cands, ca)
		}
	}
	c.mu.RUnlock()
	for _, ca := range cands {
		if crl.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

func (c *Connector) fetchOCSP(ctx context.Context, t ocspTarget, now time.Time) error {
	k := ocspKey{fingerprint(t.issuer), t.cert.SerialNumber.String()}
	c.mu.RLock()
	e := c.ocsp[k]
	c.mu.RUnlock()
	if e != nil && (e.status == statusRevoked || e.validUntil.Sub(now) > c.o.RefreshEvery) {
		return nil // still good for longer than until the next round
	}
	i := slices.IndexFunc(t.cert.OCSPServer, isHTTPURL)
	if i < 0 {
		return nil
	}
	u := t.cert.OCSPServer[i]
	body, err := ocsp.CreateRequest(t.cert, t.issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return fmt.Errorf("cps: OCSP request for serial %s: %w", t.cert.SerialNumber, err)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cps: OCSP %s: %w", u, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	data, err := c.do(req, maxOCSPSize)
	if err != nil {
		return fmt.Errorf("cps: OCSP %s: %w", u, err)
	}
	resp, err := ocsp.ParseResponseForCert(data, t.cert, t.issuer)
	if err != nil {
		return fmt.Errorf("cps: OCSP %s: %w", u, err)
	}
	// x/crypto/ocsp checks that a delegated responder's certificate is
	// signed by the issuer but not that the issuer delegated OCSP signing
	// to it: without this, any certificate the CA issued (a card!) could
	// sign "good" answers.
	if rc := resp.Certificate; rc != nil && !bytes.Equal(rc.Raw, t.issuer.Raw) {
		if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return fmt.Errorf("cps: OCSP %s: responder certificate lacks the OCSP signing usage", u)
		}
		if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
			return fmt.Errorf("cps: OCSP %s: responder certificate is not valid now", u)
		}
	}
	if resp.SerialNumber == nil || resp.SerialNumber.Cmp(t.cert.SerialNumber) != 0 {
		return fmt.Errorf("cps: OCSP %s: response is for another certificate", u)
	}
	ne := &ocspEntry{thisUpdate: resp.ThisUpdate, validUntil: resp.NextUpdate}
	if ne.validUntil.IsZero() {
		ne.validUntil = now.Add(c.o.RefreshEvery)
	}
	switch resp.Status {
	case ocsp.Good:
		ne.status = statusGood
	case ocsp.Revoked:
		ne.status = statusRevoked
	default:
		ne.status = statusUnknown
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.ocsp[k]; old != nil && old.thisUpdate.After(ne.thisUpdate) {
		return nil
	}
	c.ocsp[k] = ne
	return nil
}
