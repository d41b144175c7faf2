package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

func newUUID() string { return uuid.NewString() }

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(body)
}

const scimContentType = "application/scim+json"

// Schemas a user and a group resource carry.
var (
	userSchemas  = []string{userSchemaURN, enterpriseSchemaURN}
	groupSchemas = []string{groupSchemaURN}
)

// resource is a stored user or group on its way out as a SCIM resource.
type resource struct {
	resourceType string // "User" or "Group"
	schemas      []string
	id           string
	externalID   string
	attributes   map[string]any // without id, externalId, schemas and meta
	created      time.Time
	modified     time.Time
	revision     int64
}

// render returns the resource as a SCIM JSON object: attributes, id, externalId, schemas, meta.
func (res resource) render() map[string]any {
	m := res.attributes
	m["id"] = res.id
	if res.externalID != "" {
		m["externalId"] = res.externalID
	}
	m["schemas"] = res.schemas
	m["meta"] = map[string]any{
		"resourceType": res.resourceType,
		"created":      res.created.Format(time.RFC3339),
		"lastModified": res.modified.Format(time.RFC3339),
		"version":      metaVersion(res.revision),
		"location":     res.location(),
	}
	return m
}

func (res resource) location() string { return res.resourceType + "s/" + res.id }

func metaVersion(rev int64) string { return fmt.Sprintf(`W/"%d"`, rev) }

// writeResource sends one resource with its version as Etag; a 201 also carries its Location.
func writeResource(w http.ResponseWriter, status int, res resource) {
	w.Header().Set("Etag", metaVersion(res.revision))
	if status == http.StatusCreated {
		w.Header().Set("Location", res.location())
	}
	writeJSON(w, status, scimContentType, res.render())
}

// writeNoContent sends a 204, as Identity Center answers a DELETE and a group PATCH.
func writeNoContent(w http.ResponseWriter) {
	w.Header().Set("Content-Type", scimContentType)
	w.WriteHeader(http.StatusNoContent)
}

// sendSCIMError sends err in Identity Center's error shape; an unexpected error is logged and
// answered 500.
func (e *Emulator) sendSCIMError(w http.ResponseWriter, r *http.Request, err error) {
	ae := asAPIError(err)
	if ae.status == http.StatusInternalServerError {
		e.log.ErrorContext(r.Context(), "emulator request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeSCIMError(w, ae.status, ae.detail)
}
