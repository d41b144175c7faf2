package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SCIMExternalIDIssuer is the Issuer of the ExternalIds the identitystore API reports for
// users and groups created through SCIM (the SCIM externalId is the Id).
const SCIMExternalIDIssuer = "scim"

// enterpriseExtension is the identitystore name of the enterprise user extension.
const enterpriseExtension = "aws:identitystore:enterprise"

const idstoreContentType = "application/x-amz-json-1.1"

// idstoreName is the identitystore Name shape.
type idstoreName struct {
	Formatted       *string `json:"Formatted,omitempty"`
	FamilyName      *string `json:"FamilyName,omitempty"`
	GivenName       *string `json:"GivenName,omitempty"`
	MiddleName      *string `json:"MiddleName,omitempty"`
	HonorificPrefix *string `json:"HonorificPrefix,omitempty"`
	HonorificSuffix *string `json:"HonorificSuffix,omitempty"`
}

// idstoreValue is the identitystore Email / PhoneNumber / Role shape.
type idstoreValue struct {
	Value   *string `json:"Value,omitempty"`
	Type    *string `json:"Type,omitempty"`
	Primary bool    `json:"Primary"`
}

type idstoreAddress struct {
	StreetAddress *string `json:"StreetAddress,omitempty"`
	Locality      *string `json:"Locality,omitempty"`
	Region        *string `json:"Region,omitempty"`
	PostalCode    *string `json:"PostalCode,omitempty"`
	Country       *string `json:"Country,omitempty"`
	Formatted     *string `json:"Formatted,omitempty"`
	Type          *string `json:"Type,omitempty"`
	Primary       bool    `json:"Primary"`
}

type idstoreExternalID struct {
	Issuer *string `json:"Issuer"`
	ID     *string `json:"Id"`
}

type idstoreMemberID struct {
	UserID *string `json:"UserId,omitempty"`
}

// idstoreRequest is the union of the request shapes the emulator serves; which fields are required
// depends on the operation.
type idstoreRequest struct {
	IdentityStoreID     *string          `json:"IdentityStoreId"`
	UserID              *string          `json:"UserId"`
	GroupID             *string          `json:"GroupId"`
	MembershipID        *string          `json:"MembershipId"`
	MemberID            *idstoreMemberID `json:"MemberId"`
	GroupIDs            []string         `json:"GroupIds"`
	AlternateIdentifier *struct {
		ExternalID      *idstoreExternalID `json:"ExternalId"`
		UniqueAttribute *struct {
			AttributePath  *string `json:"AttributePath"`
			AttributeValue any     `json:"AttributeValue"`
		} `json:"UniqueAttribute"`
	} `json:"AlternateIdentifier"`
	Filters []struct {
		AttributePath  *string `json:"AttributePath"`
		AttributeValue *string `json:"AttributeValue"`
	} `json:"Filters"`
	MaxResults *int     `json:"MaxResults"`
	NextToken  *string  `json:"NextToken"`
	Extensions []string `json:"Extensions"`
	Operations []struct {
		AttributePath  *string `json:"AttributePath"`
		AttributeValue any     `json:"AttributeValue"`
	} `json:"Operations"`
	Revision          *string          `json:"Revision"`
	UserName          *string          `json:"UserName"`
	DisplayName       *string          `json:"DisplayName"`
	Description       *string          `json:"Description"`
	Name              *idstoreName     `json:"Name"`
	NickName          *string          `json:"NickName"`
	ProfileURL        *string          `json:"ProfileUrl"`
	Title             *string          `json:"Title"`
	UserType          *string          `json:"UserType"`
	PreferredLanguage *string          `json:"PreferredLanguage"`
	Locale            *string          `json:"Locale"`
	Timezone          *string          `json:"Timezone"`
	Website           *string          `json:"Website"`
	Birthdate         *string          `json:"Birthdate"`
	Emails            []idstoreValue   `json:"Emails"`
	PhoneNumbers      []idstoreValue   `json:"PhoneNumbers"`
	Roles             []idstoreValue   `json:"Roles"`
	Addresses         []idstoreAddress `json:"Addresses"`
	Photos            []any            `json:"Photos"`
	UserExtensions    map[string]any   `json:"-"`
}

func validationException(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf(format, args...), awsType: "ValidationException"}
}

func resourceNotFoundException(resourceType, id string) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf("%s %s not found", strings.ToLower(resourceType), id),
		awsType: "ResourceNotFoundException"}
}

func conflictException(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: detail, awsType: "ConflictException"}
}

// asIdstoreError maps SCIM-side errors to identitystore exceptions.
func asIdstoreError(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.status {
	case http.StatusConflict:
		return conflictException(ae.detail)
	case http.StatusNotFound:
		return &apiError{status: http.StatusBadRequest, detail: ae.detail, awsType: "ResourceNotFoundException"}
	case http.StatusBadRequest:
		return validationException("%s", ae.detail)
	}
	return err
}

// writeAWSJSONError writes an AWS JSON 1.1 error.
func writeAWSJSONError(w http.ResponseWriter, ae *apiError, extra map[string]any) {
	typ := ae.awsType
	if typ == "" {
		switch ae.status {
		case http.StatusNotFound:
			typ = "ResourceNotFoundException"
		case http.StatusConflict:
			typ = "ConflictException"
		case http.StatusInternalServerError:
			typ = "InternalServerException"
		default:
			typ = "ValidationException"
		}
	}
	status := ae.status
	if status < 500 {
		status = http.StatusBadRequest
	}
	body := map[string]any{"__type": typ, "Message": ae.detail, "RequestId": w.Header().Get("X-Amzn-RequestId")}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("X-Amzn-ErrorType", typ)
	writeJSON(w, status, idstoreContentType, body)
}

// identityStoreAPI serves the identitystore operations; its methods are named as the operations.
type identityStoreAPI struct{ *Emulator }

// identityStoreOperations maps each identitystore operation the emulator serves (X-Amz-Target
// "AWSIdentityStore.<name>"; the Stats key is "identitystore.<name>") to its handler.
var identityStoreOperations = map[string]func(identityStoreAPI, context.Context, *idstoreRequest) (map[string]any, error){
	"ListUsers":                     identityStoreAPI.ListUsers,
	"GetUserId":                     identityStoreAPI.GetUserID,
	"DescribeUser":                  identityStoreAPI.DescribeUser,
	"CreateUser":                    identityStoreAPI.CreateUser,
	"UpdateUser":                    identityStoreAPI.UpdateUser,
	"DeleteUser":                    identityStoreAPI.DeleteUser,
	"ListGroups":                    identityStoreAPI.ListGroups,
	"GetGroupId":                    identityStoreAPI.GetGroupID,
	"DescribeGroup":                 identityStoreAPI.DescribeGroup,
	"CreateGroup":                   identityStoreAPI.CreateGroup,
	"UpdateGroup":                   identityStoreAPI.UpdateGroup,
	"DeleteGroup":                   identityStoreAPI.DeleteGroup,
	"ListGroupMemberships":          identityStoreAPI.ListGroupMemberships,
	"ListGroupMembershipsForMember": identityStoreAPI.ListGroupMembershipsForMember,
	"GetGroupMembershipId":          identityStoreAPI.GetGroupMembershipID,
	"DescribeGroupMembership":       identityStoreAPI.DescribeGroupMembership,
	"IsMemberInGroups":              identityStoreAPI.IsMemberInGroups,
	"CreateGroupMembership":         identityStoreAPI.CreateGroupMembership,
	"DeleteGroupMembership":         identityStoreAPI.DeleteGroupMembership,
}

// serveIdentityStore serves the identitystore API (AWS JSON 1.1): every operation is a POST to
// the same path, named by the X-Amz-Target header, so it is routed by identityStoreOperations.
func (e *Emulator) serveIdentityStore(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeAWSJSONError(w, validationException("the identitystore API takes POST requests"), nil)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeAWSJSONError(w, &apiError{status: http.StatusForbidden, detail: "Missing Authentication Token",
			awsType: "MissingAuthenticationTokenException"}, nil)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AWSIdentityStore.")
	if !ok || identityStoreOperations[op] == nil {
		writeAWSJSONError(w, &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf("unknown operation %q", target),
			awsType: "UnknownOperationException"}, nil)
		return
	}
	admitted := e.admit(w, r, "identitystore", func(retry time.Duration) {
		secs := max(1, int((retry+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeAWSJSONError(w, &apiError{status: http.StatusBadRequest, detail: detailThrottled, awsType: "ThrottlingException"},
			map[string]any{"RetryAfterSeconds": secs})
	}, func() {
		writeAWSJSONError(w, &apiError{status: http.StatusInternalServerError, detail: "An internal error occurred (injected by the emulator).",
			awsType: "InternalServerException"}, map[string]any{"RetryAfterSeconds": 1})
	})
	if !admitted {
		return
	}
	e.count("identitystore." + op)
	body, err := readBody(r)
	if err != nil {
		writeAWSJSONError(w, asAPIError(err), nil)
		return
	}
	req, err := decodeIdstoreRequest(body)
	if err != nil {
		writeAWSJSONError(w, asAPIError(err), nil)
		return
	}
	if req.IdentityStoreID == nil || *req.IdentityStoreID != e.storeID {
		writeAWSJSONError(w, &apiError{status: http.StatusBadRequest, detail: "identity store not found",
			awsType: "ResourceNotFoundException"}, map[string]any{"ResourceType": "IDENTITY_STORE"})
		return
	}
	out, err := identityStoreOperations[op](identityStoreAPI{e}, r.Context(), req)
	if err != nil {
		ae := asAPIError(err)
		if ae.status == http.StatusInternalServerError {
			e.log.ErrorContext(r.Context(), "emulator identitystore request failed", "operation", op, "error", err)
		}
		writeAWSJSONError(w, ae, nil)
		return
	}
	writeJSON(w, http.StatusOK, idstoreContentType, out)
}

// decodeIdstoreRequest decodes an identitystore request body strictly.
func decodeIdstoreRequest(body []byte) (*idstoreRequest, error) {
	var req idstoreRequest
	if len(strings.TrimSpace(string(body))) == 0 {
		return &req, nil
	}
	// Extensions is a list of names on reads but a map on CreateUser; split the two.
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, &apiError{status: http.StatusBadRequest, detail: "request body is not a JSON object: " + err.Error(),
			awsType: "SerializationException"}
	}
	if raw, ok := probe["Extensions"]; ok && strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
		if err := json.Unmarshal(raw, &req.UserExtensions); err != nil {
			return nil, validationException("Extensions must map extension names to objects")
		}
		delete(probe, "Extensions")
		body, _ = json.Marshal(probe)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &apiError{status: http.StatusBadRequest, detail: "cannot decode request: " + err.Error(),
			awsType: "SerializationException"}
	}
	return &req, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func required(p *string, name string) (string, error) {
	if p == nil || *p == "" {
		return "", validationException("%s is required", name)
	}
	if len(*p) > 1024 {
		return "", validationException("%s is longer than 1024 characters", name)
	}
	return *p, nil
}

func maxResults(req *idstoreRequest) (int, error) {
	if req.MaxResults == nil {
		return defaultCount, nil
	}
	if *req.MaxResults < 1 || *req.MaxResults > defaultCount {
		return 0, validationException("MaxResults must be from 1 to %d", defaultCount)
	}
	return *req.MaxResults, nil
}

func memberUserID(req *idstoreRequest) (string, error) {
	if req.MemberID == nil || req.MemberID.UserID == nil || *req.MemberID.UserID == "" {
		return "", validationException("MemberId.UserId is required")
	}
	return *req.MemberID.UserID, nil
}

// nextToken wraps a continuation key into an opaque NextToken.
func nextToken(sig, key string) any {
	if key == "" {
		return nil
	}
	return encodeCursor(sig, key)
}

func tokenKey(req *idstoreRequest, sig string) (string, error) {
	if req.NextToken == nil {
		return "", nil
	}
	key, err := decodeCursor(*req.NextToken, sig)
	if err != nil {
		return "", validationException("invalid NextToken")
	}
	return key, nil
}

// altID decodes an AlternateIdentifier: ("external", id) or (attribute path, value).
func altID(req *idstoreRequest) (string, string, error) {
	a := req.AlternateIdentifier
	switch {
	case a == nil || (a.ExternalID == nil) == (a.UniqueAttribute == nil):
		return "", "", validationException("AlternateIdentifier must hold exactly one of ExternalId and UniqueAttribute")
	case a.ExternalID != nil:
		issuer, err := required(a.ExternalID.Issuer, "ExternalId.Issuer")
		if err != nil {
			return "", "", err
		}
		id, err := required(a.ExternalID.ID, "ExternalId.Id")
		if err != nil {
			return "", "", err
		}
		if issuer != SCIMExternalIDIssuer {
			return "external-unknown", id, nil
		}
		return "external", id, nil
	}
	path, err := required(a.UniqueAttribute.AttributePath, "UniqueAttribute.AttributePath")
	if err != nil {
		return "", "", err
	}
	v, ok := a.UniqueAttribute.AttributeValue.(string)
	if !ok || v == "" {
		return "", "", validationException("UniqueAttribute.AttributeValue must be a non-empty string")
	}
	return path, v, nil
}
