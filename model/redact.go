package model

import (
	"regexp"
	"strings"
)

// Redacted replaces a secret in every report.
const Redacted = "[redacted]"

// redaction is one kind of secret: what it looks like, what replaces it,
// and words one of which the text must hold (lower case) for it to be
// looked for, so that text without them costs no regular expression.
type redaction struct {
	name     string
	re       *regexp.Regexp
	repl     string // regexp.Expand template; "" means Redacted
	triggers []string
}

// keywords end the key of a credential written key: value, key=value or
// "key": "value" (YAML, JSON, env, flags): token, id-token, API_TOKEN,
// password, client-secret, client-key-data, apiKey, private_key, ...
// Keys that name a file (tokenFile, tlsPrivateKeyFile, client-key) do not
// end with one, so paths are kept.
const keywords = `(?:token|password|passwd|secret|client-key-data|client-certificate-data|api[_-]?key|private[_-]?key|access[_-]?key|credentials?)`

// keyTriggers are what every key ending with one of keywords contains.
var keyTriggers = []string{"token", "passw", "secret", "-data", "key", "credential"}

// redactions are the secrets Redact recognises, in the order it replaces
// them (a PEM block that is not closed is redacted to the end, by redact).
// Each leaves what the secret is (the key, the PEM type, the scheme) and
// replaces only its value, so a finding still says what it is about.
var redactions = []redaction{
	{"PEM block", regexp.MustCompile(`(?s)-----BEGIN ([A-Z0-9 ]{1,64})-----.*?-----END [A-Z0-9 ]{1,64}-----`), "-----BEGIN ${1}-----" + Redacted + "-----END ${1}-----", []string{"-----begin "}},
	{"base64 of a PEM block (kubeconfig *-data)", regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/=]*`), "", []string{"ls0tls1crudjti"}},
	{"JSON web token (service-account token)", regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`), "", []string{"eyj"}},
	{"bearer token", regexp.MustCompile(`(?i)\b(bearer)\s+[A-Za-z0-9._~+/-]{8,}=*`), "${1} " + Redacted, []string{"bearer"}},
	{"basic credentials", regexp.MustCompile(`(?i)(authorization["']?\s*[:=]\s*["']?basic\s+)[A-Za-z0-9+/]{4,}=*`), "${1}" + Redacted, []string{"basic"}},
	{"password in a URL", regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@:]*):[^\s/@]+@`), "${1}:" + Redacted + "@", []string{"://"}},
	{"credential by key", regexp.MustCompile(`(?i)(\b[\w.-]*` + keywords + `["']?[ \t]*[:=][ \t]*)("[^"\n]*"|'[^'\n]*'|\[redacted\]|[^\s"',;}\]]+)`), "${1}" + Redacted, keyTriggers},
	{"credential flag", regexp.MustCompile(`(?i)(--[\w-]*(?:token|password|passwd|secret)[ \t]+)([^\s-]\S*)`), "${1}" + Redacted, []string{"token", "passw", "secret"}},
	{"cloud access key", regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{35}\b|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}`), "",
		[]string{"akia", "asia", "aiza", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox"}},
}

// Redact returns s with every secret it recognises replaced by Redacted:
// PEM blocks (certificates, private keys) and their base64 form in
// kubeconfigs, JSON web tokens (service-account tokens), bearer and basic
// credentials, passwords in URLs, values of keys that name a credential
// (token:, password=, client-key-data:, "secret": ...), credential flags
// (--token X) and cloud access keys. It is idempotent.
func Redact(s string) string {
	out, _ := redact(s, false)
	return out
}

// redact redacts s, which starts inside a PEM block when inPEM is set (the
// lines before it opened one), and reports whether s ends inside one.
func redact(s string, inPEM bool) (string, bool) {
	head := ""
	if inPEM {
		end := pemFooter.FindStringIndex(s)
		if end == nil {
			return Redacted, true
		}
		if end[0] > 0 {
			head = Redacted
		}
		head, s = head+s[end[0]:end[1]], s[end[1]:]
	}
	lower := strings.ToLower(s)
	for _, r := range redactions {
		if !containsAny(lower, r.triggers) {
			continue
		}
		repl := r.repl
		if repl == "" {
			repl = Redacted
		}
		s = r.re.ReplaceAllString(s, repl)
	}
	// A block opened after the last one closed runs to the end of s.
	if !strings.Contains(s, "-----BEGIN ") {
		return head + s, false
	}
	from := 0
	if ends := pemFooter.FindAllStringIndex(s, -1); len(ends) > 0 {
		from = ends[len(ends)-1][1]
	}
	open := pemHeader.FindStringIndex(s[from:])
	if open == nil {
		return head + s, false
	}
	return head + s[:from+open[1]] + Redacted, true
}

// The lines that open and close a PEM block.
var (
	pemHeader = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]{1,64}-----`)
	pemFooter = regexp.MustCompile(`-----END [A-Z0-9 ]{1,64}-----`)
)

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// RedactLines redacts lines as one text: a PEM block that one line opens
// is redacted up to the line that ends it (a key quoted line by line).
func RedactLines(lines []string) []string {
	if lines == nil {
		return nil
	}
	out := make([]string, len(lines))
	inPEM := false
	for i, l := range lines {
		out[i], inPEM = redact(l, inPEM)
	}
	return out
}

// Redacted returns f with secrets redacted (Redact) from all its text: the
// title, the root cause, the evidence, the fixes (descriptions, commands,
// manifests) and the references. Its ID, status, subject and key identify
// it and are kept.
func (f Finding) Redacted() Finding {
	f.Title = Redact(f.Title)
	f.RootCause = Redact(f.RootCause)
	f.Evidence = RedactLines(f.Evidence)
	if f.Fixes != nil {
		fixes := make([]Fix, len(f.Fixes))
		for i, fx := range f.Fixes {
			fx.Description = Redact(fx.Description)
			fx.Commands = RedactLines(fx.Commands)
			fx.Manifest = Redact(fx.Manifest)
			fixes[i] = fx
		}
		f.Fixes = fixes
	}
	f.References = RedactLines(f.References)
	return f
}
