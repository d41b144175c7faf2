package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Schema URNs the emulator speaks.
const (
	userSchemaURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchemaURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterpriseSchemaURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	patchOpURN          = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	listResponseURN     = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	errorURN            = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// Identity Center's field limits (identitystore API reference).
const (
	maxUserName   = 128
	maxText       = 1024
	maxExternalID = 256
	maxMembersOp  = 100
)

// userDoc is a user as stored: SCIM attribute names, one value per multi-valued attribute.
type userDoc struct {
	ExternalID        string         `json:"externalId,omitempty"`
	UserName          string         `json:"userName"`
	Name              *nameDoc       `json:"name,omitempty"`
	DisplayName       string         `json:"displayName,omitempty"`
	NickName          string         `json:"nickName,omitempty"`
	ProfileURL        string         `json:"profileUrl,omitempty"`
	Title             string         `json:"title,omitempty"`
	UserType          string         `json:"userType,omitempty"`
	PreferredLanguage string         `json:"preferredLanguage,omitempty"`
	Locale            string         `json:"locale,omitempty"`
	Timezone          string         `json:"timezone,omitempty"`
	Active            *bool          `json:"active,omitempty"`
	Emails            []multiDoc     `json:"emails,omitempty"`
	PhoneNumbers      []multiDoc     `json:"phoneNumbers,omitempty"`
	Roles             []multiDoc     `json:"roles,omitempty"`
	Addresses         []addressDoc   `json:"addresses,omitempty"`
	Enterprise        *enterpriseDoc `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
}

type nameDoc struct {
	Formatted       string `json:"formatted,omitempty"`
	FamilyName      string `json:"familyName,omitempty"`
	GivenName       string `json:"givenName,omitempty"`
	MiddleName      string `json:"middleName,omitempty"`
	HonorificPrefix string `json:"honorificPrefix,omitempty"`
	HonorificSuffix string `json:"honorificSuffix,omitempty"`
}

type multiDoc struct {
	Value   string `json:"value,omitempty"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary"`
}

type addressDoc struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"streetAddress,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postalCode,omitempty"`
	Country       string `json:"country,omitempty"`
	Type          string `json:"type,omitempty"`
	Primary       bool   `json:"primary,omitempty"`
}

type enterpriseDoc struct {
	EmployeeNumber string      `json:"employeeNumber,omitempty"`
	CostCenter     string      `json:"costCenter,omitempty"`
	Organization   string      `json:"organization,omitempty"`
	Division       string      `json:"division,omitempty"`
	Department     string      `json:"department,omitempty"`
	Manager        *managerDoc `json:"manager,omitempty"`
}

type managerDoc struct {
	Value string `json:"value"`
	Ref   string `json:"$ref,omitempty"`
}

func (e *enterpriseDoc) empty() bool {
	return e == nil || (*e == enterpriseDoc{})
}

func (u *userDoc) active() bool { return u.Active == nil || *u.Active }

// groupDoc is a SCIM group body as sent on POST.
type groupDoc struct {
	DisplayName string      `json:"displayName"`
	ExternalID  string      `json:"externalId,omitempty"`
	Members     []memberDoc `json:"members,omitempty"`
}

type memberDoc struct {
	Value string `json:"value"`
	Ref   string `json:"$ref,omitempty"`
	Type  string `json:"type,omitempty"`
}

// attribute kinds for the strict decoder.
type kind int

const (
	kAny kind = iota // accepted and ignored (id, meta)
	kString
	kBool
	kStrings
	kComplex
)

// attrSpec describes one attribute the decoder accepts. Names match case-insensitively,
// as SCIM requires, and are rewritten to their canonical spelling.
type attrSpec struct {
	name     string
	kind     kind
	multi    bool
	minLen   int
	maxLen   int
	sub      specs
	rejected string // non-empty: the attribute is refused with this reason
}

type specs map[string]*attrSpec

func mkSpecs(list ...*attrSpec) specs {
	m := make(specs, len(list))
	for _, a := range list {
		m[strings.ToLower(a.name)] = a
	}
	return m
}

func str(name string, minLen, maxLen int) *attrSpec {
	return &attrSpec{name: name, kind: kString, minLen: minLen, maxLen: maxLen}
}

func text(name string) *attrSpec { return str(name, 0, maxText) }

func rejected(name, why string) *attrSpec { return &attrSpec{name: name, rejected: why} }

var (
	displayRejected = rejected("display", "the display sub-attribute is not supported")
	multiSpec       = mkSpecs(text("value"), text("type"), &attrSpec{name: "primary", kind: kBool}, displayRejected)
	managerSpec     = mkSpecs(str("value", 1, maxText), text("$ref"),
		rejected("displayName", "manager.displayName is not supported"), displayRejected)
	userSpecs = mkSpecs(
		&attrSpec{name: "schemas", kind: kStrings},
		&attrSpec{name: "id", kind: kAny},
		&attrSpec{name: "meta", kind: kAny},
		str("externalId", 1, maxExternalID),
		str("userName", 1, maxUserName),
		&attrSpec{name: "name", kind: kComplex, sub: mkSpecs(
			str("formatted", 0, maxText), str("familyName", 1, maxText), str("givenName", 1, maxText),
			str("middleName", 0, maxText), str("honorificPrefix", 0, maxText), str("honorificSuffix", 0, maxText))},
		str("displayName", 1, maxText),
		text("nickName"), text("profileUrl"), text("title"), text("userType"),
		text("preferredLanguage"), text("locale"), text("timezone"),
		&attrSpec{name: "active", kind: kBool},
		&attrSpec{name: "emails", kind: kComplex, multi: true, sub: multiSpec},
		&attrSpec{name: "phoneNumbers", kind: kComplex, multi: true, sub: multiSpec},
		&attrSpec{name: "roles", kind: kComplex, multi: true, sub: multiSpec},
		&attrSpec{name: "addresses", kind: kComplex, multi: true, sub: mkSpecs(
			text("formatted"), text("streetAddress"), text("locality"), text("region"), text("postalCode"),
			text("country"), text("type"), &attrSpec{name: "primary", kind: kBool}, displayRejected)},
		&attrSpec{name: enterpriseSchemaURN, kind: kComplex, sub: mkSpecs(
			text("employeeNumber"), text("costCenter"), text("organization"), text("division"), text("department"),
			&attrSpec{name: "manager", kind: kComplex, sub: managerSpec})},
		rejected("password", "password is not supported"),
		rejected("ims", "ims is not supported"),
		rejected("photos", "photos is not supported"),
		rejected("x509Certificates", "x509Certificates is not supported"),
		rejected("entitlements", "entitlements is not supported"),
		rejected("groups", "groups is read-only and may not be sent"),
	)
	memberSpec = mkSpecs(str("value", 1, maxText), text("$ref"), text("type"), displayRejected)
	groupSpecs = mkSpecs(
		&attrSpec{name: "schemas", kind: kStrings},
		&attrSpec{name: "id", kind: kAny},
		&attrSpec{name: "meta", kind: kAny},
		str("displayName", 1, maxText),
		str("externalId", 1, maxExternalID),
		&attrSpec{name: "members", kind: kComplex, multi: true, sub: memberSpec},
	)
)

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf(format, args...)}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// normalizeObject checks obj against sp and returns a copy with canonical attribute names.
// Null values are dropped (SCIM treats null as unassigned).
func normalizeObject(obj map[string]any, sp specs, prefix string) (map[string]any, error) {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		a, ok := sp[strings.ToLower(k)]
		if !ok {
			return nil, badRequest("unknown attribute %q", prefix+k)
		}
		full := prefix + a.name
		if a.rejected != "" {
			return nil, badRequest("attribute %q is not supported: %s", full, a.rejected)
		}
		if _, dup := out[a.name]; dup {
			return nil, badRequest("attribute %q given more than once", full)
		}
		if v == nil {
			continue
		}
		nv, err := normalizeValue(v, a, full)
		if err != nil {
			return nil, err
		}
		out[a.name] = nv
	}
	return out, nil
}

func normalizeValue(v any, a *attrSpec, full string) (any, error) {
	if a.multi {
		arr, ok := v.([]any)
		if !ok {
			return nil, badRequest("attribute %q must be an array, got %s", full, jsonKind(v))
		}
		out := make([]any, 0, len(arr))
		for i, el := range arr {
			one := *a
			one.multi = false
			nv, err := normalizeValue(el, &one, fmt.Sprintf("%s[%d]", full, i))
			if err != nil {
				return nil, err
			}
			out = append(out, nv)
		}
		return out, nil
	}
	switch a.kind {
	case kAny:
		return v, nil
	case kString:
		s, ok := v.(string)
		if !ok {
			return nil, badRequest("attribute %q must be a string, got %s", full, jsonKind(v))
		}
		n := utf8.RuneCountInString(s)
		if n < a.minLen {
			return nil, badRequest("attribute %q must not be empty", full)
		}
		if a.maxLen > 0 && n > a.maxLen {
			return nil, badRequest("attribute %q is longer than %d characters", full, a.maxLen)
		}
		return s, nil
	case kBool:
		b, ok := v.(bool)
		if !ok {
			return nil, badRequest("attribute %q must be a boolean, got %s", full, jsonKind(v))
		}
		return b, nil
	case kStrings:
		arr, ok := v.([]any)
		if !ok {
			return nil, badRequest("attribute %q must be an array of strings, got %s", full, jsonKind(v))
		}
		for _, el := range arr {
			if _, ok := el.(string); !ok {
				return nil, badRequest("attribute %q must be an array of strings", full)
			}
		}
		return arr, nil
	case kComplex:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, badRequest("attribute %q must be an object, got %s", full, jsonKind(v))
		}
		return normalizeObject(m, a.sub, full+".")
	}
	return nil, badRequest("attribute %q is not supported", full)
}

// decodeJSONObject parses a request body as one JSON object, numbers kept exact.
func decodeJSONObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, badRequest("request body is not valid JSON: %v", err)
	}
	if m == nil {
		return nil, badRequest("request body must be a JSON object")
	}
	if dec.More() {
		return nil, badRequest("request body holds more than one JSON value")
	}
	return m, nil
}

// fromMap converts a normalized attribute map into dst via JSON.
func fromMap(m map[string]any, dst any) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return badRequest("request body cannot be encoded: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badRequest("request body does not match the schema: %v", err)
	}
	return nil
}

// toMap converts a document into a canonical attribute map.
func toMap(v any) map[string]any {
	raw, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func checkSchemas(m map[string]any, want string) error {
	v, ok := m["schemas"]
	if !ok {
		return badRequest("schemas is required and must include %q", want)
	}
	for _, s := range v.([]any) {
		if strings.EqualFold(s.(string), want) {
			return nil
		}
	}
	return badRequest("schemas must include %q", want)
}

// userFromMap validates a normalized user map against Identity Center's rules.
func userFromMap(m map[string]any) (userDoc, error) {
	var d userDoc
	if err := checkSchemas(m, userSchemaURN); err != nil {
		return d, err
	}
	delete(m, "schemas")
	delete(m, "id")
	delete(m, "meta")
	if err := fromMap(m, &d); err != nil {
		return d, err
	}
	return d, validateUser(&d)
}

func validateUser(d *userDoc) error {
	switch {
	case d.UserName == "":
		return badRequest("userName is required")
	case d.DisplayName == "":
		return badRequest("displayName is required")
	case d.Name == nil || d.Name.GivenName == "":
		return badRequest("name.givenName is required")
	case d.Name.FamilyName == "":
		return badRequest("name.familyName is required")
	}
	for _, mv := range []struct {
		name string
		n    int
	}{{"emails", len(d.Emails)}, {"addresses", len(d.Addresses)}, {"phoneNumbers", len(d.PhoneNumbers)}, {"roles", len(d.Roles)}} {
		if mv.n > 1 {
			return badRequest("%s may hold at most one value, got %d", mv.name, mv.n)
		}
	}
	if len(d.Emails) == 1 {
		if d.Emails[0].Value == "" {
			return badRequest("emails[0].value is required")
		}
		if !d.Emails[0].Primary {
			return badRequest("emails[0].primary must be true")
		}
	}
	if len(d.PhoneNumbers) == 1 && d.PhoneNumbers[0].Value == "" {
		return badRequest("phoneNumbers[0].value is required")
	}
	if len(d.Roles) == 1 && d.Roles[0].Value == "" {
		return badRequest("roles[0].value is required")
	}
	if d.Enterprise != nil {
		if d.Enterprise.Manager != nil && d.Enterprise.Manager.Value == "" {
			return badRequest("manager.value is required when manager is given")
		}
		if d.Enterprise.Manager != nil {
			d.Enterprise.Manager.Ref = ""
		}
		if d.Enterprise.empty() {
			d.Enterprise = nil
		}
	}
	return nil
}

// decodeUser strictly decodes a SCIM user body (POST or PUT).
func decodeUser(body []byte) (userDoc, error) {
	raw, err := decodeJSONObject(body)
	if err != nil {
		return userDoc{}, err
	}
	m, err := normalizeObject(raw, userSpecs, "")
	if err != nil {
		return userDoc{}, err
	}
	d, err := userFromMap(m)
	if err != nil {
		return d, err
	}
	return d, checkSchemasSpelling(raw, userSchemaURN)
}

// decodeGroup strictly decodes a SCIM group body (POST).
func decodeGroup(body []byte) (groupDoc, error) {
	var d groupDoc
	raw, err := decodeJSONObject(body)
	if err != nil {
		return d, err
	}
	m, err := normalizeObject(raw, groupSpecs, "")
	if err != nil {
		return d, err
	}
	if err := checkSchemas(m, groupSchemaURN); err != nil {
		return d, err
	}
	delete(m, "schemas")
	delete(m, "id")
	delete(m, "meta")
	if err := fromMap(m, &d); err != nil {
		return d, err
	}
	if d.DisplayName == "" {
		return d, badRequest("displayName is required")
	}
	if len(d.Members) > maxMembersOp {
		return d, badRequest("Request is unparsable, syntactically incorrect, or violates schema: at most %d members may be sent, got %d", maxMembersOp, len(d.Members))
	}
	return d, checkSchemasSpelling(raw, groupSchemaURN)
}

// checkSchemasSpelling applies, after every other check, the rule the emulator kept from the
// elimity-com/scim server it once decoded POST and PUT bodies with: the attribute is spelled
// "schemas" and lists the core schema URN spelled exactly so, though other attribute names and
// the URN compare without case elsewhere.
func checkSchemasSpelling(raw map[string]any, urn string) error {
	list, _ := raw["schemas"].([]any)
	for _, s := range list {
		if s == urn {
			return nil
		}
	}
	return badRequest("The request body message structure was invalid or did not conform to the request schema.")
}
