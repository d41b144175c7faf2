package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// buildDiscovery makes the library server that answers the discovery endpoints. Its resource
// types carry no handler: the routes in routes.go send it discovery requests only.
func (e *Emulator) buildDiscovery() error {
	userType := scim.ResourceType{
		ID:          optional.NewString("User"),
		Name:        "User",
		Description: optional.NewString("User Account"),
		Endpoint:    "/Users",
		Schema:      schema.CoreUserSchema(),
		SchemaExtensions: []scim.SchemaExtension{
			{Schema: schema.ExtensionEnterpriseUser()},
		},
	}
	groupType := scim.ResourceType{
		ID:          optional.NewString("Group"),
		Name:        "Group",
		Description: optional.NewString("Group"),
		Endpoint:    "/Groups",
		Schema:      schema.CoreGroupSchema(),
	}
	maxResults := 100
	switch {
	case e.strict:
		maxResults = 50
	case e.strictRFC:
		maxResults = e.rfcPageSize
	}
	srv, err := scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{
			DocumentationURI: optional.NewString("https://docs.aws.amazon.com/singlesignon/latest/developerguide/provision-automatically.html"),
			AuthenticationSchemes: []scim.AuthenticationScheme{{
				Type:        scim.AuthenticationTypeOauthBearerToken,
				Name:        "OAuth Bearer Token",
				Description: "Authentication scheme using the OAuth Bearer Token Standard",
				Primary:     true,
			}},
			MaxResults:       maxResults,
			SupportFiltering: true,
			SupportPatch:     true,
		},
		ResourceTypes: []scim.ResourceType{userType, groupType},
	})
	if err != nil {
		return fmt.Errorf("emulator: build SCIM discovery server: %w", err)
	}
	e.discovery = srv
	return nil
}

// serveDiscovery serves a discovery request (its path already relative to the SCIM base path)
// through the library, its errors reshaped into Identity Center's body.
func (e *Emulator) serveDiscovery(w http.ResponseWriter, r *http.Request, _ []byte) {
	rw := &errorRewriter{ResponseWriter: w}
	e.discovery.ServeHTTP(rw, r)
	rw.finish()
}

// errorRewriter sits between the library and the client and turns the library's RFC 7644 error
// bodies into Identity Center's shape.
type errorRewriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *errorRewriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code < 400 {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *errorRewriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status >= 400 {
		return w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// finish sends a buffered error in the AWS shape.
func (w *errorRewriter) finish() {
	if w.status < 400 {
		return
	}
	var lib struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(w.buf.Bytes(), &lib)
	detail := lib.Detail
	if w.status == http.StatusBadRequest && detail == "" {
		detail = detailUnparsable
	}
	writeSCIMError(w.ResponseWriter, w.status, detail)
}
