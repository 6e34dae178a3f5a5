package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MinAuditRetentionWarning is the retention below which the configuration
// is warned about.
const MinAuditRetentionWarning = 180 * 24 * time.Hour

// AuditSyslogFacilities are the syslog facilities accepted.
var AuditSyslogFacilities = []string{"auth", "authpriv", "security", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var sinkName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// sdID is an RFC 5424 SD-ID of the name@number form.
var sdID = regexp.MustCompile(`^[!#-<>-\\^-~]{1,32}$`)

func (v *validator) audit() {
	a := &v.cfg.Audit
	switch {
	case a.Retention < 0:
		v.errorf("audit.retention", "%s is not allowed; expected 0 (keep forever) or a positive duration, e.g. 8760h", fmtDuration(a.Retention))
	case a.Retention > 0 && a.Retention < 24*time.Hour:
		v.errorf("audit.retention", "%s is shorter than a day; expected 0 (keep forever) or at least 24h (the purge runs daily)", fmtDuration(a.Retention))
	case a.Retention > 0 && a.Retention < MinAuditRetentionWarning:
		v.warnf("audit.retention", "%s is shorter than 180 days (4320h); traceability of access to health data is usually kept a year or more", fmtDuration(a.Retention))
	}
	seen := map[string]int{}
	for i, e := range a.Export {
		path := index("audit.export", i)
		switch {
		case e.Name == "":
			v.keyErrorf(path+".name", "is required; expected a name for the sink, e.g. siem")
		case !sinkName.MatchString(e.Name):
			v.errorf(path+".name", "%q is not a valid name; expected letters, digits, '-' and '_' (at most 64)", e.Name)
		default:
			if j, dup := seen[e.Name]; dup {
				v.errorf(path+".name", "%q is also %s; expected each sink name once", e.Name, index("audit.export", j))
			}
			seen[e.Name] = i
		}
		if !v.enum(path+".type", e.Type, "sink type", "jsonl", "syslog") {
			continue
		}
		if e.Type != "jsonl" && e.JSONL != nil {
			v.keyErrorf(path+".jsonl", "is only for type jsonl; expected a syslog block")
		}
		if e.Type != "syslog" && e.Syslog != nil {
			v.keyErrorf(path+".syslog", "is only for type syslog; expected a jsonl block")
		}
		switch e.Type {
		case "jsonl":
			v.auditJSONL(path+".jsonl", e.JSONL)
		case "syslog":
			v.auditSyslog(path+".syslog", e.Syslog)
		}
	}
}

func (v *validator) auditJSONL(path string, j *AuditJSONLExport) {
	if j == nil {
		v.keyErrorf(path, "is required for type jsonl; expected path (and optionally max_size_mb, daily, max_files)")
		return
	}
	if j.Path == "" {
		v.keyErrorf(path+".path", "is required; expected the file to write, e.g. /var/log/garde/audit.jsonl")
	} else if strings.HasSuffix(j.Path, "/") {
		v.errorf(path+".path", "%q is a directory; expected a file name", j.Path)
	}
	if j.MaxSizeMB < 0 {
		v.errorf(path+".max_size_mb", "%d is not allowed; expected 0 (no limit) or a positive number of megabytes", j.MaxSizeMB)
	}
	if j.MaxFiles < 0 {
		v.errorf(path+".max_files", "%d is not allowed; expected 0 (keep all) or a positive number", j.MaxFiles)
	}
}

func (v *validator) auditSyslog(path string, s *AuditSyslog) {
	if s == nil {
		v.keyErrorf(path, "is required for type syslog; expected address (and ca_file, server_name...)")
		return
	}
	if s.Address == "" {
		v.keyErrorf(path+".address", "is required; expected the collector's host:port, e.g. siem.chu.fr:6514")
	} else {
		v.hostPort(path+".address", s.Address, true)
	}
	v.file(path+".ca_file", s.CAFile)
	switch {
	case s.CertFile != "" && s.KeyFile == "":
		v.keyErrorf(path+".key_file", "is missing; expected both cert_file and key_file, or neither")
	case s.CertFile == "" && s.KeyFile != "":
		v.keyErrorf(path+".cert_file", "is missing; expected both cert_file and key_file, or neither")
	}
	v.file(path+".cert_file", s.CertFile)
	v.file(path+".key_file", s.KeyFile)
	if s.Facility != "" {
		v.enum(path+".facility", s.Facility, "syslog facility", AuditSyslogFacilities...)
	}
	if s.SDID != "" && (!sdID.MatchString(s.SDID) || !strings.Contains(s.SDID, "@")) {
		v.errorf(path+".sd_id", "%q is not an RFC 5424 SD-ID; expected name@enterprise-number, e.g. garde@32473", s.SDID)
	}
	if strings.ContainsFunc(s.Hostname, func(r rune) bool { return r < 33 || r > 126 }) || len(s.Hostname) > 255 {
		v.errorf(path+".hostname", "%s is not a syslog HOSTNAME; expected printable ASCII without spaces", fmt.Sprintf("%q", s.Hostname))
	}
}
