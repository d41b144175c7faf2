package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// accessOperation serves one sso-admin or organizations operation with the access state locked
// and swept; it returns the response body.
type accessOperation func(e *Emulator, ctx context.Context, body []byte) (any, error)

// accessAPI is one of the two access front ends: its X-Amz-Target prefix, its Stats prefix, its
// operations and how it names a throttle.
type accessAPI struct {
	name       string // Stats prefix and fault api: "sso-admin", "organizations"
	target     string // X-Amz-Target prefix
	operations map[string]accessOperation
	throttle   string // exception of a throttled request
}

var ssoAdminAPI = &accessAPI{name: "sso-admin", target: "SWBExternalService.", throttle: "ThrottlingException",
	operations: ssoAdminOperations}

var organizationsAPI = &accessAPI{name: "organizations", target: "AWSOrganizationsV20161128.",
	throttle: "TooManyRequestsException", operations: organizationsOperations}

// serveAccess serves an access API (AWS JSON 1.1): every operation is a POST to one path, named
// by the X-Amz-Target header. The shared admin rate limit is applied first, then the fault knobs.
func (e *Emulator) serveAccess(api *accessAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeAWSJSONError(w, validationException("the %s API takes POST requests", api.name), nil)
			return
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			writeAWSJSONError(w, &apiError{status: http.StatusForbidden, detail: "Missing Authentication Token",
				awsType: "MissingAuthenticationTokenException"}, nil)
			return
		}
		target := r.Header.Get("X-Amz-Target")
		name, ok := strings.CutPrefix(target, api.target)
		op := api.operations[name]
		if !ok || op == nil {
			writeAWSJSONError(w, &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf("unknown operation %q", target),
				awsType: "UnknownOperationException"}, nil)
			return
		}
		throttled := func(retry time.Duration) {
			secs := max(1, int((retry+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeAWSJSONError(w, &apiError{status: http.StatusBadRequest, detail: detailThrottled, awsType: api.throttle}, nil)
		}
		if retry, ok := e.access.admitRate(); !ok {
			sleepCtx(r.Context(), e.Faults().Latency)
			e.count("throttled")
			e.count(api.name + ".throttled")
			throttled(retry)
			return
		}
		admitted := e.admit(w, r, api.name, throttled, func() {
			writeAWSJSONError(w, &apiError{status: http.StatusInternalServerError, detail: "An internal error occurred (injected by the emulator).",
				awsType: "InternalServerException"}, nil)
		})
		if !admitted {
			return
		}
		e.count(api.name + "." + name)
		body, err := readBody(r)
		if err != nil {
			writeAWSJSONError(w, asAPIError(err), nil)
			return
		}
		a := e.access
		a.mu.Lock()
		a.sweep(r.Context(), e)
		out, err := op(e, r.Context(), body)
		a.mu.Unlock()
		if err != nil {
			ae := asAPIError(err)
			if ae.status == http.StatusInternalServerError {
				e.log.ErrorContext(r.Context(), "emulator access request failed", "api", api.name, "operation", name, "error", err)
			}
			if ae.awsType == "ThrottlingException" && api.name == "sso-admin" {
				e.count("throttled")
				e.count(api.name + ".throttled")
			}
			writeAWSJSONError(w, ae, nil)
			return
		}
		writeJSON(w, http.StatusOK, idstoreContentType, out)
	}
}

// admitRate takes a token of the shared admin rate limit; when there is none it returns how
// long until there is one.
func (a *accessState) admitRate() (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.limiter == nil {
		return 0, true
	}
	res := a.limiter.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return max(d, time.Second/time.Duration(max(1, int(a.adminRate)))), false
	}
	return 0, true
}

// decodeAccess decodes a request body strictly into v.
func decodeAccess(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{status: http.StatusBadRequest, detail: "cannot decode request: " + err.Error(), awsType: "SerializationException"}
	}
	return nil
}

// pageParams are the paging fields every list request carries.
type pageParams struct {
	MaxResults *int    `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

// pageAnswer answers a listing: the page of keys that p asks for (see pageOf), each rendered by
// out, under field, with the next token.
func pageAnswer(keys []string, p pageParams, limit int, sig string, invalid func(string) error, field string, out func(key string) any) (any, error) {
	page, next, err := pageOf(keys, p, limit, sig, invalid)
	if err != nil {
		return nil, err
	}
	items := []any{}
	for _, k := range page {
		items = append(items, out(k))
	}
	return map[string]any{field: items, "NextToken": next}, nil
}

// pageOf returns the page of keys (sorted) that the request asks for and the next token. limit
// is the API's largest page; sig ties a token to its listing.
func pageOf(keys []string, p pageParams, limit int, sig string, invalid func(string) error) ([]string, any, error) {
	n := limit
	if p.MaxResults != nil {
		if *p.MaxResults < 1 || *p.MaxResults > limit {
			return nil, nil, invalid(fmt.Sprintf("MaxResults must be from 1 to %d", limit))
		}
		n = *p.MaxResults
	}
	sort.Strings(keys)
	start := 0
	if p.NextToken != nil {
		after, err := decodeCursor(*p.NextToken, sig)
		if err != nil || after == "" {
			return nil, nil, invalid("invalid NextToken")
		}
		start = sort.SearchStrings(keys, after)
		if start < len(keys) && keys[start] == after {
			start++
		}
	}
	end := min(start+n, len(keys))
	out := keys[start:end]
	var next any
	if end < len(keys) {
		next = encodeCursor(sig, keys[end-1])
	}
	return out, next, nil
}

// tagsOut renders tags as the Key/Value list both APIs use, sorted by key.
func tagsOut(tags map[string]string) []map[string]string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]string{"Key": k, "Value": tags[k]})
	}
	return out
}

// tagIn is a Key/Value pair of a request.
type tagIn struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}
