package config

import "time"

// Audit configures the audit trail's retention and SIEM export
// (docs/audit.md).
type Audit struct {
	// Retention is how long events are kept; older ones are purged daily,
	// up to the newest signed checkpoint older than that (so the rest still
	// verifies). 0, the default, keeps events forever. Below 180 days is
	// warned about: French health-care traceability guidance usually asks
	// for a year or more.
	Retention time.Duration `yaml:"retention"`
	// Export lists the SIEM sinks the trail is sent to.
	Export []AuditExport `yaml:"export"`
}

// AuditExport is one SIEM sink.
type AuditExport struct {
	// Name identifies the sink (its cursor in the store, its metrics
	// label): letters, digits, '-' and '_'. Renaming a sink starts its
	// export again from the first stored event.
	Name string `yaml:"name"`
	// Type is jsonl (a file) or syslog (RFC 5424 over TLS).
	Type   string            `yaml:"type"`
	JSONL  *AuditJSONLExport `yaml:"jsonl"`
	Syslog *AuditSyslog      `yaml:"syslog"`
}

// AuditJSONLExport writes JSON lines to a rotated file.
type AuditJSONLExport struct {
	// Path of the current file; its directory must exist.
	Path string `yaml:"path"`
	// MaxSizeMB rotates the file at this size (0: no size limit).
	MaxSizeMB int `yaml:"max_size_mb"`
	// Daily rotates the file each day.
	Daily bool `yaml:"daily"`
	// MaxFiles is how many rotated files to keep (0: all).
	MaxFiles int `yaml:"max_files"`
}

// AuditSyslog sends RFC 5424 messages over TLS (RFC 5425).
type AuditSyslog struct {
	// Address is the collector's host:port (usually port 6514).
	Address string `yaml:"address"`
	// ServerName is the name in the collector's certificate (default: the
	// host of Address).
	ServerName string `yaml:"server_name"`
	// CAFile is the PEM bundle that signs the collector's certificate
	// (default: the system's roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are Garde's client certificate, when the
	// collector asks for one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Facility default authpriv.
	Facility string `yaml:"facility"`
	// Hostname is the HOSTNAME of the messages (default: the host's
	// name).
	Hostname string `yaml:"hostname"`
	// SDID names the structured-data element (default garde@32473).
	SDID string `yaml:"sd_id"`
}
