package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// Sentinel errors that an *APIError matches with errors.Is.
var (
	// ErrNotFound: the target has no such resource (HTTP 404, ResourceNotFoundException).
	ErrNotFound = errors.New("scim: not found")
	// ErrConflict: the target refused a duplicate (HTTP 409, ConflictException).
	ErrConflict = errors.New("scim: conflict")
	// ErrThrottled: the target refused the request for its rate (HTTP 429, ThrottlingException).
	ErrThrottled = errors.New("scim: throttled")
)

// APIError is an error answer of a target: the operation, the HTTP status, the detail the target
// gave (from the SCIM error body, or the message of an AWS exception) and its request id.
type APIError struct {
	// Op names the request, such as "POST /Users" or "identitystore ListUsers".
	Op string
	// Status is the HTTP status code.
	Status int
	// Detail is the target's explanation, from its error body.
	Detail string
	// RequestID is the target's id of the request (exceptionRequestId or x-amzn-RequestId).
	RequestID string
	// Code is the AWS exception name when one was given, such as "ThrottlingException".
	Code string
	// RetryAfter is the pause the target asked for (Retry-After header or RetryAfterSeconds).
	RetryAfter time.Duration
	// Hint tells the operator what to look at, such as the setting that holds the token on a
	// 401 or 403; "" for none.
	Hint string
}

// Error formats the error on one line.
func (e *APIError) Error() string {
	s := fmt.Sprintf("scim: %s: status %d", e.Op, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Detail != "" {
		s += ": " + quote(e.Detail)
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// Is makes errors.Is(err, ErrNotFound / ErrConflict / ErrThrottled) work through an *APIError.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == 404 || e.Code == "ResourceNotFoundException"
	case ErrConflict:
		return e.Status == 409 || e.Code == "ConflictException"
	case ErrThrottled:
		return e.throttled()
	}
	return false
}

func (e *APIError) throttled() bool {
	return e.Status == 429 || e.Code == "ThrottlingException"
}

// IsRetryable is the one classifier of failures: throttles (429, ThrottlingException), server
// errors (5xx) and network failures (refused or reset connections, timeouts, truncated answers)
// are worth another attempt; other 4xx answers and a cancelled context are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.throttled() || ae.Status >= 500
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// A per-request timeout of the HTTP client is retryable; the caller's own deadline is
		// checked by the retry loop before it tries again.
		return true
	}
	if isCertificateError(err) {
		// An untrusted, expired or misnamed certificate does not fix itself on a retry.
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// isUnreachable reports whether err says that nothing answers at the target's address: the
// connection was refused, or the host name does not exist. At the start of a run that is a
// wrong URL or a target that is down, which retries for 20 s do not mend.
func isUnreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// isCertificateError reports whether err is a failed verification of the server's certificate.
func isCertificateError(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// quote quotes s for messages, keeping it printable however hostile the target's value is; the
// same rule as the model's messages in package scim.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.QuoteToGraphic(s)
}
