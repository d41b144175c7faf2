package emulator

import (
	"context"
	"database/sql"
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

const isContentType = "application/x-amz-json-1.1"

// isName is the identitystore Name shape.
type isName struct {
	Formatted       *string `json:"Formatted,omitempty"`
	FamilyName      *string `json:"FamilyName,omitempty"`
	GivenName       *string `json:"GivenName,omitempty"`
	MiddleName      *string `json:"MiddleName,omitempty"`
	HonorificPrefix *string `json:"HonorificPrefix,omitempty"`
	HonorificSuffix *string `json:"HonorificSuffix,omitempty"`
}

// isValue is the identitystore Email / PhoneNumber / Role shape.
type isValue struct {
	Value   *string `json:"Value,omitempty"`
	Type    *string `json:"Type,omitempty"`
	Primary bool    `json:"Primary"`
}

type isAddress struct {
	StreetAddress *string `json:"StreetAddress,omitempty"`
	Locality      *string `json:"Locality,omitempty"`
	Region        *string `json:"Region,omitempty"`
	PostalCode    *string `json:"PostalCode,omitempty"`
	Country       *string `json:"Country,omitempty"`
	Formatted     *string `json:"Formatted,omitempty"`
	Type          *string `json:"Type,omitempty"`
	Primary       bool    `json:"Primary"`
}

type isExternalID struct {
	Issuer *string `json:"Issuer"`
	ID     *string `json:"Id"`
}

type isMemberID struct {
	UserID *string `json:"UserId,omitempty"`
}

// isRequest is the union of the request shapes the emulator serves; which fields are required
// depends on the operation.
type isRequest struct {
	IdentityStoreID     *string     `json:"IdentityStoreId"`
	UserID              *string     `json:"UserId"`
	GroupID             *string     `json:"GroupId"`
	MembershipID        *string     `json:"MembershipId"`
	MemberID            *isMemberID `json:"MemberId"`
	GroupIDs            []string    `json:"GroupIds"`
	AlternateIdentifier *struct {
		ExternalID      *isExternalID `json:"ExternalId"`
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
	Revision          *string        `json:"Revision"`
	UserName          *string        `json:"UserName"`
	DisplayName       *string        `json:"DisplayName"`
	Description       *string        `json:"Description"`
	Name              *isName        `json:"Name"`
	NickName          *string        `json:"NickName"`
	ProfileURL        *string        `json:"ProfileUrl"`
	Title             *string        `json:"Title"`
	UserType          *string        `json:"UserType"`
	PreferredLanguage *string        `json:"PreferredLanguage"`
	Locale            *string        `json:"Locale"`
	Timezone          *string        `json:"Timezone"`
	Website           *string        `json:"Website"`
	Birthdate         *string        `json:"Birthdate"`
	Emails            []isValue      `json:"Emails"`
	PhoneNumbers      []isValue      `json:"PhoneNumbers"`
	Roles             []isValue      `json:"Roles"`
	Addresses         []isAddress    `json:"Addresses"`
	Photos            []any          `json:"Photos"`
	UserExtensions    map[string]any `json:"-"`
}

func isValidation(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf(format, args...), awsType: "ValidationException"}
}

func isNotFound(resourceType, id string) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: fmt.Sprintf("%s %s not found", strings.ToLower(resourceType), id),
		awsType: "ResourceNotFoundException"}
}

func isConflict(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: detail, awsType: "ConflictException"}
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
	writeJSON(w, status, isContentType, body)
}

var isOperations = map[string]bool{
	"ListUsers": true, "ListGroups": true, "ListGroupMemberships": true, "ListGroupMembershipsForMember": true,
	"GetUserId": true, "GetGroupId": true, "GetGroupMembershipId": true, "DescribeUser": true, "DescribeGroup": true,
	"DescribeGroupMembership": true, "IsMemberInGroups": true, "CreateUser": true, "CreateGroup": true,
	"CreateGroupMembership": true, "UpdateUser": true, "UpdateGroup": true, "DeleteUser": true, "DeleteGroup": true,
	"DeleteGroupMembership": true,
}

func (e *Emulator) serveIdentityStore(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeAWSJSONError(w, isValidation("the identitystore API takes POST requests"), nil)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeAWSJSONError(w, &apiError{status: http.StatusForbidden, detail: "Missing Authentication Token",
			awsType: "MissingAuthenticationTokenException"}, nil)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AWSIdentityStore.")
	if !ok || !isOperations[op] {
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
	req, err := decodeISRequest(body)
	if err != nil {
		writeAWSJSONError(w, asAPIError(err), nil)
		return
	}
	if req.IdentityStoreID == nil || *req.IdentityStoreID != e.storeID {
		writeAWSJSONError(w, &apiError{status: http.StatusBadRequest, detail: "identity store not found",
			awsType: "ResourceNotFoundException"}, map[string]any{"ResourceType": "IDENTITY_STORE"})
		return
	}
	out, err := e.isDispatch(r.Context(), op, req)
	if err != nil {
		ae := asAPIError(err)
		if ae.status == http.StatusInternalServerError {
			e.log.ErrorContext(r.Context(), "emulator identitystore request failed", "operation", op, "error", err)
		}
		writeAWSJSONError(w, ae, nil)
		return
	}
	writeJSON(w, http.StatusOK, isContentType, out)
}

// decodeISRequest decodes an identitystore request body strictly.
func decodeISRequest(body []byte) (*isRequest, error) {
	var req isRequest
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
			return nil, isValidation("Extensions must map extension names to objects")
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

func sp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func derefS(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (e *Emulator) isUser(u *userRec, extensions []string) map[string]any {
	d := &u.Doc
	out := map[string]any{
		"IdentityStoreId": e.storeID,
		"UserId":          u.ID,
		"UserName":        d.UserName,
		"Revision":        strconv.FormatInt(u.Revision, 10),
		"CreatedAt":       epoch(u.Created),
		"UpdatedAt":       epoch(u.Modified),
		"CreatedBy":       u.CreatedBy,
		"UpdatedBy":       u.CreatedBy,
		"UserStatus":      map[bool]string{true: "ENABLED", false: "DISABLED"}[d.active()],
	}
	for k, v := range map[string]string{"DisplayName": d.DisplayName, "NickName": d.NickName, "ProfileUrl": d.ProfileURL,
		"Title": d.Title, "UserType": d.UserType, "PreferredLanguage": d.PreferredLanguage, "Locale": d.Locale,
		"Timezone": d.Timezone} {
		if v != "" {
			out[k] = v
		}
	}
	if n := d.Name; n != nil {
		out["Name"] = isName{Formatted: sp(n.Formatted), FamilyName: sp(n.FamilyName), GivenName: sp(n.GivenName),
			MiddleName: sp(n.MiddleName), HonorificPrefix: sp(n.HonorificPrefix), HonorificSuffix: sp(n.HonorificSuffix)}
	}
	values := func(in []multiDoc) []isValue {
		out := make([]isValue, 0, len(in))
		for _, v := range in {
			out = append(out, isValue{Value: sp(v.Value), Type: sp(v.Type), Primary: v.Primary})
		}
		return out
	}
	if len(d.Emails) > 0 {
		out["Emails"] = values(d.Emails)
	}
	if len(d.PhoneNumbers) > 0 {
		out["PhoneNumbers"] = values(d.PhoneNumbers)
	}
	if len(d.Roles) > 0 {
		out["Roles"] = values(d.Roles)
	}
	if len(d.Addresses) > 0 {
		var as []isAddress
		for _, a := range d.Addresses {
			as = append(as, isAddress{StreetAddress: sp(a.StreetAddress), Locality: sp(a.Locality), Region: sp(a.Region),
				PostalCode: sp(a.PostalCode), Country: sp(a.Country), Formatted: sp(a.Formatted), Type: sp(a.Type), Primary: a.Primary})
		}
		out["Addresses"] = as
	}
	if d.ExternalID != "" {
		out["ExternalIds"] = []map[string]string{{"Issuer": SCIMExternalIDIssuer, "Id": d.ExternalID}}
	}
	for _, x := range extensions {
		if x == enterpriseExtension && d.Enterprise != nil {
			out["Extensions"] = map[string]any{enterpriseExtension: toMap(d.Enterprise)}
		}
	}
	return out
}

func (e *Emulator) isGroup(g *groupRec) map[string]any {
	out := map[string]any{
		"IdentityStoreId": e.storeID,
		"GroupId":         g.ID,
		"DisplayName":     g.DisplayName,
		"Revision":        strconv.FormatInt(g.Revision, 10),
		"CreatedAt":       epoch(g.Created),
		"UpdatedAt":       epoch(g.Modified),
		"CreatedBy":       g.CreatedBy,
		"UpdatedBy":       g.CreatedBy,
	}
	if g.Description != "" {
		out["Description"] = g.Description
	}
	if g.ExternalID != "" {
		out["ExternalIds"] = []map[string]string{{"Issuer": SCIMExternalIDIssuer, "Id": g.ExternalID}}
	}
	return out
}

func (e *Emulator) isMembership(m *memberRec) map[string]any {
	return map[string]any{
		"IdentityStoreId": e.storeID,
		"MembershipId":    m.MembershipID,
		"GroupId":         m.GroupID,
		"MemberId":        map[string]string{"UserId": m.UserID},
		"CreatedAt":       epoch(m.Created),
		"UpdatedAt":       epoch(m.Created),
	}
}

func required(p *string, name string) (string, error) {
	if p == nil || *p == "" {
		return "", isValidation("%s is required", name)
	}
	if len(*p) > 1024 {
		return "", isValidation("%s is longer than 1024 characters", name)
	}
	return *p, nil
}

func maxResults(req *isRequest) (int, error) {
	if req.MaxResults == nil {
		return defaultCount, nil
	}
	if *req.MaxResults < 1 || *req.MaxResults > defaultCount {
		return 0, isValidation("MaxResults must be from 1 to %d", defaultCount)
	}
	return *req.MaxResults, nil
}

func memberUserID(req *isRequest) (string, error) {
	if req.MemberID == nil || req.MemberID.UserID == nil || *req.MemberID.UserID == "" {
		return "", isValidation("MemberId.UserId is required")
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

func tokenKey(req *isRequest, sig string) (string, error) {
	if req.NextToken == nil {
		return "", nil
	}
	key, err := decodeCursor(*req.NextToken, sig)
	if err != nil {
		return "", isValidation("invalid NextToken")
	}
	return key, nil
}

func (e *Emulator) isDispatch(ctx context.Context, op string, req *isRequest) (map[string]any, error) {
	switch op {
	case "ListUsers":
		return e.isListUsers(ctx, req)
	case "ListGroups":
		return e.isListGroups(ctx, req)
	case "ListGroupMemberships":
		gid, err := required(req.GroupID, "GroupId")
		if err != nil {
			return nil, err
		}
		if ok, err := e.store.groupExists(ctx, nil, gid); err != nil || !ok {
			return nil, errors.Join(err, isNotFound("GROUP", gid))
		}
		return e.isListMemberships(ctx, req, "membersOfGroup", gid, func(m memberRec) string { return m.UserID })
	case "ListGroupMembershipsForMember":
		uid, err := memberUserID(req)
		if err != nil {
			return nil, err
		}
		if ok, err := e.store.userExists(ctx, nil, uid); err != nil || !ok {
			return nil, errors.Join(err, isNotFound("USER", uid))
		}
		return e.isListMemberships(ctx, req, "membershipsOfUser", uid, func(m memberRec) string { return m.GroupID })
	case "GetUserId":
		return e.isGetUserID(ctx, req)
	case "GetGroupId":
		return e.isGetGroupID(ctx, req)
	case "DescribeUser":
		id, err := required(req.UserID, "UserId")
		if err != nil {
			return nil, err
		}
		u, err := e.store.getUser(ctx, nil, id)
		if errors.Is(err, errNotFound) {
			return nil, isNotFound("USER", id)
		}
		if err != nil {
			return nil, err
		}
		return e.isUser(&u, req.Extensions), nil
	case "DescribeGroup":
		id, err := required(req.GroupID, "GroupId")
		if err != nil {
			return nil, err
		}
		g, err := e.store.getGroup(ctx, nil, id)
		if errors.Is(err, errNotFound) {
			return nil, isNotFound("GROUP", id)
		}
		if err != nil {
			return nil, err
		}
		return e.isGroup(&g), nil
	case "DescribeGroupMembership":
		id, err := required(req.MembershipID, "MembershipId")
		if err != nil {
			return nil, err
		}
		m, err := e.store.getMemberByID(ctx, id)
		if errors.Is(err, errNotFound) {
			return nil, isNotFound("GROUP_MEMBERSHIP", id)
		}
		if err != nil {
			return nil, err
		}
		return e.isMembership(&m), nil
	case "GetGroupMembershipId":
		gid, err := required(req.GroupID, "GroupId")
		if err != nil {
			return nil, err
		}
		uid, err := memberUserID(req)
		if err != nil {
			return nil, err
		}
		m, err := e.store.getMember(ctx, nil, gid, uid)
		if errors.Is(err, errNotFound) {
			return nil, isNotFound("GROUP_MEMBERSHIP", gid+"/"+uid)
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"IdentityStoreId": e.storeID, "MembershipId": m.MembershipID}, nil
	case "IsMemberInGroups":
		return e.isIsMemberInGroups(ctx, req)
	case "CreateUser":
		return e.isCreateUser(ctx, req)
	case "UpdateUser":
		return e.isUpdateUser(ctx, req)
	case "DeleteUser":
		id, err := required(req.UserID, "UserId")
		if err != nil {
			return nil, err
		}
		if err := e.store.deleteUser(ctx, id); errors.Is(err, errNotFound) {
			return nil, isNotFound("USER", id)
		} else if err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	case "CreateGroup":
		name, err := required(req.DisplayName, "DisplayName")
		if err != nil {
			return nil, err
		}
		g, err := e.insertGroup(ctx, name, "", derefS(req.Description), "identitystore", nil)
		if err != nil {
			return nil, isErr(err)
		}
		return map[string]any{"IdentityStoreId": e.storeID, "GroupId": g.ID, "Revision": strconv.FormatInt(g.Revision, 10)}, nil
	case "UpdateGroup":
		return e.isUpdateGroup(ctx, req)
	case "DeleteGroup":
		id, err := required(req.GroupID, "GroupId")
		if err != nil {
			return nil, err
		}
		if err := e.store.deleteGroup(ctx, id); errors.Is(err, errNotFound) {
			return nil, isNotFound("GROUP", id)
		} else if err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	case "CreateGroupMembership":
		return e.isCreateMembership(ctx, req)
	case "DeleteGroupMembership":
		id, err := required(req.MembershipID, "MembershipId")
		if err != nil {
			return nil, err
		}
		m, err := e.store.getMemberByID(ctx, id)
		if errors.Is(err, errNotFound) {
			return nil, isNotFound("GROUP_MEMBERSHIP", id)
		}
		if err != nil {
			return nil, err
		}
		if _, err := e.store.removeMember(ctx, nil, m.GroupID, m.UserID); err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	}
	return nil, isValidation("operation %s is not supported", op)
}

// isErr maps SCIM-side errors to identitystore exceptions.
func isErr(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.status {
	case http.StatusConflict:
		return isConflict(ae.detail)
	case http.StatusNotFound:
		return &apiError{status: http.StatusBadRequest, detail: ae.detail, awsType: "ResourceNotFoundException"}
	case http.StatusBadRequest:
		return isValidation("%s", ae.detail)
	}
	return err
}

func (e *Emulator) isListUsers(ctx context.Context, req *isRequest) (map[string]any, error) {
	limit, err := maxResults(req)
	if err != nil {
		return nil, err
	}
	q := userQuery{kind: "all"}
	if len(req.Filters) > 1 {
		return nil, isValidation("at most one filter is supported")
	}
	if len(req.Filters) == 1 {
		f := req.Filters[0]
		if derefS(f.AttributePath) != "UserName" || f.AttributeValue == nil {
			return nil, isValidation("only the UserName filter is supported")
		}
		q = userQuery{kind: "userName", a: *f.AttributeValue}
	}
	sig := signature("is.ListUsers", q.kind, q.a)
	key, err := tokenKey(req, sig)
	if err != nil {
		return nil, err
	}
	users, next, err := e.pageUsers(ctx, q, key, limit)
	if err != nil {
		return nil, isErr(err)
	}
	out := make([]any, 0, len(users))
	for i := range users {
		out = append(out, e.isUser(&users[i], req.Extensions))
	}
	return map[string]any{"Users": out, "NextToken": nextToken(sig, next)}, nil
}

func (e *Emulator) isListGroups(ctx context.Context, req *isRequest) (map[string]any, error) {
	limit, err := maxResults(req)
	if err != nil {
		return nil, err
	}
	q := groupQuery{kind: "all"}
	if len(req.Filters) > 1 {
		return nil, isValidation("at most one filter is supported")
	}
	if len(req.Filters) == 1 {
		f := req.Filters[0]
		if derefS(f.AttributePath) != "DisplayName" || f.AttributeValue == nil {
			return nil, isValidation("only the DisplayName filter is supported")
		}
		q = groupQuery{kind: "displayName", a: *f.AttributeValue}
	}
	sig := signature("is.ListGroups", q.kind, q.a)
	key, err := tokenKey(req, sig)
	if err != nil {
		return nil, err
	}
	groups, next, err := e.pageGroups(ctx, q, key, limit)
	if err != nil {
		return nil, isErr(err)
	}
	out := make([]any, 0, len(groups))
	for i := range groups {
		out = append(out, e.isGroup(&groups[i]))
	}
	return map[string]any{"Groups": out, "NextToken": nextToken(sig, next)}, nil
}

func (e *Emulator) isListMemberships(ctx context.Context, req *isRequest, stmt, id string, keyOf func(memberRec) string) (map[string]any, error) {
	limit, err := maxResults(req)
	if err != nil {
		return nil, err
	}
	sig := signature("is."+stmt, id)
	key, err := tokenKey(req, sig)
	if err != nil {
		return nil, err
	}
	ms, err := e.store.queryMembers(ctx, nil, stmt, id, key, limit+1)
	if err != nil {
		return nil, err
	}
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		next = keyOf(ms[limit-1])
	}
	out := make([]any, 0, len(ms))
	for i := range ms {
		out = append(out, e.isMembership(&ms[i]))
	}
	return map[string]any{"GroupMemberships": out, "NextToken": nextToken(sig, next)}, nil
}

// altID decodes an AlternateIdentifier: ("external", id) or (attribute path, value).
func altID(req *isRequest) (string, string, error) {
	a := req.AlternateIdentifier
	switch {
	case a == nil || (a.ExternalID == nil) == (a.UniqueAttribute == nil):
		return "", "", isValidation("AlternateIdentifier must hold exactly one of ExternalId and UniqueAttribute")
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
		return "", "", isValidation("UniqueAttribute.AttributeValue must be a non-empty string")
	}
	return path, v, nil
}

func (e *Emulator) isGetUserID(ctx context.Context, req *isRequest) (map[string]any, error) {
	kind, v, err := altID(req)
	if err != nil {
		return nil, err
	}
	var q userQuery
	switch kind {
	case "external":
		q = userQuery{kind: "externalId", a: v}
	case "external-unknown":
		return nil, isNotFound("USER", v)
	case "userName", "UserName":
		q = userQuery{kind: "userName", a: v}
	case "emails.value", "Emails.Value":
		q = userQuery{kind: "email", a: v}
	default:
		return nil, isValidation("unique attribute %q is not supported for users; use userName or emails.value", kind)
	}
	users, _, err := e.pageUsers(ctx, q, "", 1)
	if err != nil {
		return nil, isErr(err)
	}
	if len(users) == 0 {
		return nil, isNotFound("USER", v)
	}
	return map[string]any{"IdentityStoreId": e.storeID, "UserId": users[0].ID}, nil
}

func (e *Emulator) isGetGroupID(ctx context.Context, req *isRequest) (map[string]any, error) {
	kind, v, err := altID(req)
	if err != nil {
		return nil, err
	}
	var q groupQuery
	switch kind {
	case "external":
		q = groupQuery{kind: "externalId", a: v}
	case "external-unknown":
		return nil, isNotFound("GROUP", v)
	case "displayName", "DisplayName":
		q = groupQuery{kind: "displayName", a: v}
	default:
		return nil, isValidation("unique attribute %q is not supported for groups; use displayName", kind)
	}
	groups, _, err := e.pageGroups(ctx, q, "", 1)
	if err != nil {
		return nil, isErr(err)
	}
	if len(groups) == 0 {
		return nil, isNotFound("GROUP", v)
	}
	return map[string]any{"IdentityStoreId": e.storeID, "GroupId": groups[0].ID}, nil
}

func (e *Emulator) isIsMemberInGroups(ctx context.Context, req *isRequest) (map[string]any, error) {
	uid, err := memberUserID(req)
	if err != nil {
		return nil, err
	}
	if len(req.GroupIDs) < 1 || len(req.GroupIDs) > 100 {
		return nil, isValidation("GroupIds must hold 1 to 100 ids")
	}
	if ok, err := e.store.userExists(ctx, nil, uid); err != nil || !ok {
		return nil, errors.Join(err, isNotFound("USER", uid))
	}
	results := make([]any, 0, len(req.GroupIDs))
	for _, gid := range req.GroupIDs {
		_, err := e.store.getMember(ctx, nil, gid, uid)
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
		results = append(results, map[string]any{"GroupId": gid, "MemberId": map[string]string{"UserId": uid},
			"MembershipExists": err == nil})
	}
	return map[string]any{"Results": results}, nil
}

// isUserDoc converts a CreateUser request into a user document.
func isUserDoc(req *isRequest) (userDoc, error) {
	if len(req.Photos) > 0 || req.Website != nil || req.Birthdate != nil {
		return userDoc{}, isValidation("Photos, Website and Birthdate are not supported by the emulator")
	}
	d := userDoc{UserName: derefS(req.UserName), DisplayName: derefS(req.DisplayName), NickName: derefS(req.NickName),
		ProfileURL: derefS(req.ProfileURL), Title: derefS(req.Title), UserType: derefS(req.UserType),
		PreferredLanguage: derefS(req.PreferredLanguage), Locale: derefS(req.Locale), Timezone: derefS(req.Timezone)}
	if n := req.Name; n != nil {
		d.Name = &nameDoc{Formatted: derefS(n.Formatted), FamilyName: derefS(n.FamilyName), GivenName: derefS(n.GivenName),
			MiddleName: derefS(n.MiddleName), HonorificPrefix: derefS(n.HonorificPrefix), HonorificSuffix: derefS(n.HonorificSuffix)}
	}
	conv := func(in []isValue) []multiDoc {
		var out []multiDoc
		for _, v := range in {
			out = append(out, multiDoc{Value: derefS(v.Value), Type: derefS(v.Type), Primary: v.Primary})
		}
		return out
	}
	d.Emails, d.PhoneNumbers, d.Roles = conv(req.Emails), conv(req.PhoneNumbers), conv(req.Roles)
	for _, a := range req.Addresses {
		d.Addresses = append(d.Addresses, addressDoc{StreetAddress: derefS(a.StreetAddress), Locality: derefS(a.Locality),
			Region: derefS(a.Region), PostalCode: derefS(a.PostalCode), Country: derefS(a.Country),
			Formatted: derefS(a.Formatted), Type: derefS(a.Type), Primary: a.Primary})
	}
	for name, v := range req.UserExtensions {
		if name != enterpriseExtension {
			return d, isValidation("extension %q is not supported", name)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return d, isValidation("extension %q must be an object", name)
		}
		n, err := normalizeObject(m, userSpecs[strings.ToLower(enterpriseSchemaURN)].sub, name+".")
		if err != nil {
			return d, isErr(err)
		}
		var ext enterpriseDoc
		if err := fromMap(n, &ext); err != nil {
			return d, isErr(err)
		}
		d.Enterprise = &ext
	}
	return d, validateISUser(&d)
}

// validateISUser checks a user written through identitystore: the API needs only UserName,
// but field limits and the one-value rules are the same as through SCIM.
func validateISUser(d *userDoc) error {
	n, err := normalizeObject(toMap(d), userSpecs, "")
	if err != nil {
		return isErr(err)
	}
	if d.UserName == "" {
		return isValidation("UserName is required")
	}
	var check userDoc
	if err := fromMap(n, &check); err != nil {
		return isErr(err)
	}
	for _, l := range [][]multiDoc{d.Emails, d.PhoneNumbers, d.Roles} {
		if len(l) > 1 {
			return isValidation("Emails, PhoneNumbers and Roles hold at most one value")
		}
	}
	if len(d.Addresses) > 1 {
		return isValidation("Addresses holds at most one value")
	}
	return nil
}

func (e *Emulator) isCreateUser(ctx context.Context, req *isRequest) (map[string]any, error) {
	d, err := isUserDoc(req)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	u := userRec{ID: e.newID(), Doc: d, Created: now, Modified: now, Revision: 1, CreatedBy: "identitystore"}
	err = e.store.inTx(ctx, func(tx *sql.Tx) error {
		if err := e.checkManager(ctx, tx, &u.Doc, u.ID); err != nil {
			return err
		}
		return e.store.insertUser(ctx, tx, &u)
	})
	if errors.Is(err, errDuplicate) {
		return nil, isConflict(detailDuplicate)
	}
	if err != nil {
		return nil, isErr(err)
	}
	return map[string]any{"IdentityStoreId": e.storeID, "UserId": u.ID, "Revision": "1"}, nil
}

func (e *Emulator) isUpdateUser(ctx context.Context, req *isRequest) (map[string]any, error) {
	id, err := required(req.UserID, "UserId")
	if err != nil {
		return nil, err
	}
	if len(req.Operations) == 0 || len(req.Operations) > 100 {
		return nil, isValidation("Operations must hold 1 to 100 operations")
	}
	ops := make([]patchOp, 0, len(req.Operations))
	for i, o := range req.Operations {
		path, err := required(o.AttributePath, fmt.Sprintf("Operations[%d].AttributePath", i))
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(strings.SplitN(path, ".", 2)[0]) {
		case "externalid", "externalids", "id", "groups":
			return nil, isValidation("attribute %q cannot be updated", path)
		}
		if o.AttributeValue == nil {
			ops = append(ops, patchOp{op: "remove", path: path})
		} else {
			ops = append(ops, patchOp{op: "replace", path: path, value: o.AttributeValue, hasValue: true})
		}
	}
	var u userRec
	err = e.store.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = e.store.getUser(ctx, tx, id)
		if errors.Is(err, errNotFound) {
			return isNotFound("USER", id)
		}
		if err != nil {
			return err
		}
		if req.Revision != nil && *req.Revision != strconv.FormatInt(u.Revision, 10) {
			return isConflict("the user was modified since revision " + *req.Revision)
		}
		m := toMap(&u.Doc)
		for _, op := range ops {
			if err := applyPath(m, op); err != nil {
				return isErr(err)
			}
		}
		n, err := normalizeObject(m, userSpecs, "")
		if err != nil {
			return isErr(err)
		}
		var d userDoc
		if err := fromMap(n, &d); err != nil {
			return isErr(err)
		}
		if err := validateISUser(&d); err != nil {
			return err
		}
		if d.Enterprise.empty() {
			d.Enterprise = nil
		}
		if err := e.checkManager(ctx, tx, &d, id); err != nil {
			return isErr(err)
		}
		u.Doc = d
		u.Modified = time.Now().UTC()
		return e.store.updateUser(ctx, tx, &u)
	})
	if errors.Is(err, errDuplicate) {
		return nil, isConflict(detailDuplicate)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"IdentityStoreId": e.storeID, "UserId": u.ID, "Revision": strconv.FormatInt(u.Revision, 10)}, nil
}

func (e *Emulator) isUpdateGroup(ctx context.Context, req *isRequest) (map[string]any, error) {
	id, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	if len(req.Operations) == 0 {
		return nil, isValidation("Operations must hold at least one operation")
	}
	var g groupRec
	err = e.store.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		g, err = e.store.getGroup(ctx, tx, id)
		if errors.Is(err, errNotFound) {
			return isNotFound("GROUP", id)
		}
		if err != nil {
			return err
		}
		if req.Revision != nil && *req.Revision != strconv.FormatInt(g.Revision, 10) {
			return isConflict("the group was modified since revision " + *req.Revision)
		}
		for _, o := range req.Operations {
			v, _ := o.AttributeValue.(string)
			switch strings.ToLower(derefS(o.AttributePath)) {
			case "displayname":
				if v == "" || len(v) > maxText {
					return isValidation("displayName must be 1 to %d characters", maxText)
				}
				g.DisplayName = v
			case "description":
				g.Description = v
			default:
				return isValidation("attribute %q cannot be updated", derefS(o.AttributePath))
			}
		}
		g.Modified = time.Now().UTC()
		return e.store.updateGroup(ctx, tx, &g)
	})
	if errors.Is(err, errDuplicate) {
		return nil, isConflict(detailDuplicate)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"IdentityStoreId": e.storeID, "GroupId": g.ID, "Revision": strconv.FormatInt(g.Revision, 10)}, nil
}

func (e *Emulator) isCreateMembership(ctx context.Context, req *isRequest) (map[string]any, error) {
	gid, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	uid, err := memberUserID(req)
	if err != nil {
		return nil, err
	}
	mid := e.newID()
	err = e.store.inTx(ctx, func(tx *sql.Tx) error {
		if ok, err := e.store.groupExists(ctx, tx, gid); err != nil || !ok {
			return errors.Join(err, isNotFound("GROUP", gid))
		}
		if ok, err := e.store.userExists(ctx, tx, uid); err != nil || !ok {
			return errors.Join(err, isNotFound("USER", uid))
		}
		added, err := e.store.addMember(ctx, tx, gid, uid, mid, time.Now().UTC())
		if err != nil {
			return err
		}
		if !added {
			return isConflict("Member already exists in the group.")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"IdentityStoreId": e.storeID, "MembershipId": mid}, nil
}
