package emulator

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// scimOperation is one SCIM operation: the ServeMux pattern (method and path relative to the
// SCIM base path), its name as in AWS's SCIM API reference (the Stats key is "scim." + name),
// and the handler, which gets the request body already read.
type scimOperation struct {
	pattern string
	name    string
	serve   func(e *Emulator, w http.ResponseWriter, r *http.Request, body []byte)
}

// scimOperations is every SCIM operation the emulator serves. A known path with another method
// is answered 405, any other path 404, both after the bearer token is checked.
var scimOperations = []scimOperation{
	{"GET /Users", "ListUsers", (*Emulator).listUsers},
	{"POST /Users", "CreateUser", (*Emulator).createUser},
	{"GET /Users/{id}", "GetUser", (*Emulator).getUser},
	{"PUT /Users/{id}", "PutUser", (*Emulator).replaceUser},
	{"PATCH /Users/{id}", "PatchUser", (*Emulator).patchUser},
	{"DELETE /Users/{id}", "DeleteUser", (*Emulator).deleteUser},
	{"GET /Groups", "ListGroups", (*Emulator).listGroups},
	{"POST /Groups", "CreateGroup", (*Emulator).createGroup},
	{"GET /Groups/{id}", "GetGroup", (*Emulator).getGroup},
	{"PATCH /Groups/{id}", "PatchGroup", (*Emulator).patchGroup},
	{"DELETE /Groups/{id}", "DeleteGroup", (*Emulator).deleteGroup},
	{"GET /ServiceProviderConfig", "GetServiceProviderConfig", (*Emulator).serveDiscovery},
	{"GET /Schemas", "ListSchemas", (*Emulator).serveDiscovery},
	{"GET /Schemas/{id}", "GetSchema", (*Emulator).serveDiscovery},
	{"GET /ResourceTypes", "ListResourceTypes", (*Emulator).serveDiscovery},
	{"GET /ResourceTypes/{id}", "GetResourceType", (*Emulator).serveDiscovery},
}

// buildRoutes makes the two ServeMuxes: routes for the server's paths and scimRoutes for the
// paths relative to the SCIM base path, which serveHTTP hands over with the base path removed.
func (e *Emulator) buildRoutes() {
	scim := http.NewServeMux()
	paths := map[string]bool{}
	for _, op := range scimOperations {
		method, path, _ := strings.Cut(op.pattern, " ")
		scim.Handle(op.pattern, e.scimHandler(method, op))
		paths[path] = true
	}
	for path := range paths {
		scim.HandleFunc(path, scimMethodNotAllowed)
	}
	scim.HandleFunc("/", scimEndpointNotFound)
	e.scimRoutes = e.requireBearer(scim)

	mux := http.NewServeMux()
	stats := e.requireBearer(http.HandlerFunc(e.serveStats))
	mux.Handle(StatsPath, stats)
	isPath := e.identityStorePath
	mux.HandleFunc(isPath, e.serveIdentityStore)
	mux.HandleFunc(isPath+"/{$}", e.serveIdentityStore)
	mux.HandleFunc(isPath+"/", func(w http.ResponseWriter, _ *http.Request) {
		writeAWSJSONError(w, &apiError{status: http.StatusNotFound, detail: "unknown path", awsType: "UnknownOperationException"}, nil)
	})
	for path, api := range map[string]*accessAPI{DefaultSSOAdminPath: ssoAdminAPI, DefaultOrganizationsPath: organizationsAPI} {
		mux.HandleFunc(path, e.serveAccess(api))
		mux.HandleFunc(path+"/{$}", e.serveAccess(api))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if isSCIMPath(r.URL.Path) {
			// Another tenant's path: Identity Center answers 401.
			writeSCIMError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		writeSCIMError(w, http.StatusNotFound, "Specified endpoint does not exist.")
	})
	e.routes = mux
}

// serveHTTP serves every request: SCIM requests through scimRoutes, the rest through routes.
func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-RequestId", newRequestID())
	path := r.URL.Path
	if path == e.scimPath || strings.HasPrefix(path, e.scimPath+"/") {
		e.scimRoutes.ServeHTTP(w, scimRelative(r, strings.TrimPrefix(path, e.scimPath)))
		return
	}
	e.routes.ServeHTTP(w, r)
}

// scimRelative returns r with its path made relative to the SCIM base path. Leading and
// trailing slashes are dropped, as Identity Center does ("/Users/" lists users); a path with
// an empty, "." or ".." segment or a segment starting with "." ("/Users/.search") is sent to
// "/" (404) instead of letting ServeMux redirect it.
func scimRelative(r *http.Request, rel string) *http.Request {
	rel = "/" + strings.Trim(rel, "/")
	for _, seg := range strings.Split(rel[1:], "/") {
		if rel != "/" && (seg == "" || strings.HasPrefix(seg, ".")) {
			rel = "/"
			break
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = rel
	r2.URL.RawPath = ""
	return r2
}

// scimHandler runs one SCIM operation: it refuses other methods (ServeMux lets HEAD through a
// GET pattern), applies the fault knobs, counts the operation and reads the body.
func (e *Emulator) scimHandler(method string, op scimOperation) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			scimMethodNotAllowed(w, r)
			return
		}
		ok := e.admit(w, r, "scim", func(retry time.Duration) {
			secs := int((retry + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
			writeSCIMError(w, http.StatusTooManyRequests, detailThrottled)
		}, func() {
			writeSCIMError(w, http.StatusInternalServerError, "An internal error occurred (injected by the emulator).")
		})
		if !ok {
			return
		}
		e.count("scim." + op.name)
		body, err := readBody(r)
		if err != nil {
			ae := asAPIError(err)
			writeSCIMError(w, ae.status, ae.detail)
			return
		}
		op.serve(e, w, r, body)
	})
}

func scimMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeSCIMError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not supported on %s", r.Method, r.URL.Path))
}

func scimEndpointNotFound(w http.ResponseWriter, _ *http.Request) {
	writeSCIMError(w, http.StatusNotFound, "Specified endpoint does not exist.")
}

func isSCIMPath(p string) bool {
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 4)
	return len(parts) >= 3 && parts[1] == "scim" && parts[2] == "v2"
}

// requireBearer answers 401 unless the request carries the SCIM bearer token.
func (e *Emulator) requireBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.bearerOK(r) {
			writeSCIMError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (e *Emulator) bearerOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(e.token)) == 1
}

func (e *Emulator) serveStats(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, "application/json", e.Stats())
	case http.MethodDelete:
		e.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeSCIMError(w, http.StatusMethodNotAllowed, "Use GET to read or DELETE to reset the statistics.")
	}
}

// admit runs the fault knobs for one request; it reports whether the request may proceed.
func (e *Emulator) admit(w http.ResponseWriter, r *http.Request, api string, throttled func(retry time.Duration), injected func()) bool {
	decision, latency, retry := e.decide(api)
	sleepCtx(r.Context(), latency)
	switch decision {
	case faultThrottle:
		e.count("throttled")
		throttled(retry)
		return false
	case faultDrop:
		e.count("dropped")
		dropConnection(w)
		return false
	case faultError:
		e.count("injected")
		injected()
		return false
	}
	return true
}

// readBody reads the request body up to maxBody and makes it readable again.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("cannot read request body: %v", err)
	}
	if len(body) > maxBody {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge,
			detail: fmt.Sprintf("request body exceeds %d bytes", maxBody), awsType: "ValidationException"}
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	return body, nil
}
