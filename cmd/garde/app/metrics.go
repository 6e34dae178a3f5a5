package app

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/oidc"
	"github.com/garde-sso/garde/broker/store"
)

// metrics are Garde's Prometheus metrics, on their own registry (served
// on a separate listener, never on the public one).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	events   *prometheus.CounterVec
	signins  *prometheus.CounterVec
	stepups  *prometheus.CounterVec
	emerg    *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	// Connector calls: LDAP binds and searches, Pro Santé Connect,
	// revocation list and OCSP fetches.
	connDuration *prometheus.HistogramVec
	connErrors   *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garde_http_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "garde_http_request_duration_seconds", Help: "HTTP request latency by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
	}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garde_audit_events_total", Help: "Audit events recorded, by type and outcome.",
	}, []string{"type", "outcome"})
	m.signins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garde_signins_total", Help: "Sign-ins by method (password, passkey, second_factor, enroll) and outcome; failures by reason.",
	}, []string{"method", "outcome", "reason"})
	m.stepups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garde_stepups_total", Help: "Step-ups asked of signed-in people, by level asked for and policy reason.",
	}, []string{"to", "reason"})
	m.emerg = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garde_emergency_accesses_total", Help: "Emergency accesses (bris de glace) declared, by access mode.",
	}, []string{"mode"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garde_tokens_issued_total", Help: "Tokens issued at the token endpoint, by grant type (refreshes included).",
	}, []string{"grant_type"})
	m.connDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "garde_connector_duration_seconds", Help: "Identity source calls by connector and operation (login, lookup, exchange, crl, ocsp...).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"connector", "op"})
	m.connErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garde_connector_errors_total", Help: "Identity source calls that failed for the source's reasons (unreachable, timeout, bad answer), not the person's (wrong password, refused card).",
	}, []string{"connector", "op"})
	m.reg.MustRegister(m.stepups, m.emerg, m.tokens, m.connDuration, m.connErrors)
	m.reg.MustRegister(m.requests, m.duration, m.events, m.signins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe counts an audit event. Label values come from Garde's own
// constants (types, outcomes, reason codes, methods), never from input.
func (m *metrics) observe(e store.AuditEvent) {
	m.events.WithLabelValues(e.Type, e.Outcome).Inc()
	switch e.Type {
	case audit.SignInSuccess, audit.SignInFailure:
		m.signins.WithLabelValues(e.Details["method"], e.Outcome, e.Reason).Inc()
	case audit.StepUpRequired:
		m.stepups.WithLabelValues(e.Details["to"], e.Reason).Inc()
	case audit.EmergencyDeclared:
		m.emerg.WithLabelValues(e.Reason).Inc()
	case audit.TokenIssued, audit.TokenRefreshed:
		m.tokens.WithLabelValues(e.Details["grant_type"]).Inc()
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// endpoints bounds the label values to known paths.
var endpoints = map[string]string{
	oidc.PathDiscovery: "discovery", oidc.PathJWKS: "jwks", oidc.PathAuthorize: "authorize",
	oidc.PathResume: "resume", oidc.PathToken: "token", oidc.PathUserinfo: "userinfo",
	oidc.PathIntrospect: "introspect", oidc.PathRevoke: "revoke", oidc.PathEndSession: "end_session",
	oidc.PathPAR: "par", "/login": "login", "/healthz": "healthz", "/readyz": "readyz",
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := endpoints[r.URL.Path]
		if !ok {
			name = "other"
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.requests.WithLabelValues(name, strconv.Itoa(rec.code)).Inc()
		m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}
