package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// idstoreUser renders a stored user as the identitystore User shape, with the enterprise
// extension when extensions asks for it.
func (e *Emulator) idstoreUser(u *userRec, extensions []string) map[string]any {
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
		out["Name"] = idstoreName{Formatted: optString(n.Formatted), FamilyName: optString(n.FamilyName), GivenName: optString(n.GivenName),
			MiddleName: optString(n.MiddleName), HonorificPrefix: optString(n.HonorificPrefix), HonorificSuffix: optString(n.HonorificSuffix)}
	}
	values := func(in []multiDoc) []idstoreValue {
		out := make([]idstoreValue, 0, len(in))
		for _, v := range in {
			out = append(out, idstoreValue{Value: optString(v.Value), Type: optString(v.Type), Primary: v.Primary})
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
		var as []idstoreAddress
		for _, a := range d.Addresses {
			as = append(as, idstoreAddress{StreetAddress: optString(a.StreetAddress), Locality: optString(a.Locality), Region: optString(a.Region),
				PostalCode: optString(a.PostalCode), Country: optString(a.Country), Formatted: optString(a.Formatted), Type: optString(a.Type), Primary: a.Primary})
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

// ListUsers lists users, all or by UserName, a page at a time.
func (e identityStoreAPI) ListUsers(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	limit, err := maxResults(req)
	if err != nil {
		return nil, err
	}
	q := userQuery{kind: "all"}
	if len(req.Filters) > 1 {
		return nil, validationException("at most one filter is supported")
	}
	if len(req.Filters) == 1 {
		f := req.Filters[0]
		if deref(f.AttributePath) != "UserName" || f.AttributeValue == nil {
			return nil, validationException("only the UserName filter is supported")
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
		return nil, asIdstoreError(err)
	}
	out := make([]any, 0, len(users))
	for i := range users {
		out = append(out, e.idstoreUser(&users[i], req.Extensions))
	}
	return map[string]any{"Users": out, "NextToken": nextToken(sig, next)}, nil
}

// GetUserID finds a user by ExternalId or a unique attribute.
func (e identityStoreAPI) GetUserID(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	kind, v, err := altID(req)
	if err != nil {
		return nil, err
	}
	var q userQuery
	switch kind {
	case "external":
		q = userQuery{kind: "externalId", a: v}
	case "external-unknown":
		return nil, resourceNotFoundException("USER", v)
	case "userName", "UserName":
		q = userQuery{kind: "userName", a: v}
	case "emails.value", "Emails.Value":
		q = userQuery{kind: "email", a: v}
	default:
		return nil, validationException("unique attribute %q is not supported for users; use userName or emails.value", kind)
	}
	users, _, err := e.pageUsers(ctx, q, "", 1)
	if err != nil {
		return nil, asIdstoreError(err)
	}
	if len(users) == 0 {
		return nil, resourceNotFoundException("USER", v)
	}
	return map[string]any{"IdentityStoreId": e.storeID, "UserId": users[0].ID}, nil
}

// DescribeUser returns one user.
func (e identityStoreAPI) DescribeUser(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.UserID, "UserId")
	if err != nil {
		return nil, err
	}
	u, err := e.store.getUser(ctx, nil, id)
	if errors.Is(err, errNotFound) {
		return nil, resourceNotFoundException("USER", id)
	}
	if err != nil {
		return nil, err
	}
	return e.idstoreUser(&u, req.Extensions), nil
}

// CreateUser creates a user.
func (e identityStoreAPI) CreateUser(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	d, err := userDocFromIdstore(req)
	if err != nil {
		return nil, err
	}
	u, err := e.insertUser(ctx, d, "identitystore")
	if err != nil {
		return nil, asIdstoreError(err)
	}
	return map[string]any{"IdentityStoreId": e.storeID, "UserId": u.ID, "Revision": "1"}, nil
}

// userDocFromIdstore converts a CreateUser request into a user document.
func userDocFromIdstore(req *idstoreRequest) (userDoc, error) {
	if len(req.Photos) > 0 || req.Website != nil || req.Birthdate != nil {
		return userDoc{}, validationException("Photos, Website and Birthdate are not supported by the emulator")
	}
	d := userDoc{UserName: deref(req.UserName), DisplayName: deref(req.DisplayName), NickName: deref(req.NickName),
		ProfileURL: deref(req.ProfileURL), Title: deref(req.Title), UserType: deref(req.UserType),
		PreferredLanguage: deref(req.PreferredLanguage), Locale: deref(req.Locale), Timezone: deref(req.Timezone)}
	if n := req.Name; n != nil {
		d.Name = &nameDoc{Formatted: deref(n.Formatted), FamilyName: deref(n.FamilyName), GivenName: deref(n.GivenName),
			MiddleName: deref(n.MiddleName), HonorificPrefix: deref(n.HonorificPrefix), HonorificSuffix: deref(n.HonorificSuffix)}
	}
	conv := func(in []idstoreValue) []multiDoc {
		var out []multiDoc
		for _, v := range in {
			out = append(out, multiDoc{Value: deref(v.Value), Type: deref(v.Type), Primary: v.Primary})
		}
		return out
	}
	d.Emails, d.PhoneNumbers, d.Roles = conv(req.Emails), conv(req.PhoneNumbers), conv(req.Roles)
	for _, a := range req.Addresses {
		d.Addresses = append(d.Addresses, addressDoc{StreetAddress: deref(a.StreetAddress), Locality: deref(a.Locality),
			Region: deref(a.Region), PostalCode: deref(a.PostalCode), Country: deref(a.Country),
			Formatted: deref(a.Formatted), Type: deref(a.Type), Primary: a.Primary})
	}
	for name, v := range req.UserExtensions {
		if name != enterpriseExtension {
			return d, validationException("extension %q is not supported", name)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return d, validationException("extension %q must be an object", name)
		}
		n, err := normalizeObject(m, userSpecs[strings.ToLower(enterpriseSchemaURN)].sub, name+".")
		if err != nil {
			return d, asIdstoreError(err)
		}
		var ext enterpriseDoc
		if err := fromMap(n, &ext); err != nil {
			return d, asIdstoreError(err)
		}
		d.Enterprise = &ext
	}
	return d, validateIdstoreUser(&d)
}

// validateIdstoreUser checks a user written through identitystore: the API needs only UserName,
// but field limits and the one-value rules are the same as through SCIM.
func validateIdstoreUser(d *userDoc) error {
	n, err := normalizeObject(toMap(d), userSpecs, "")
	if err != nil {
		return asIdstoreError(err)
	}
	if d.UserName == "" {
		return validationException("UserName is required")
	}
	var check userDoc
	if err := fromMap(n, &check); err != nil {
		return asIdstoreError(err)
	}
	for _, l := range [][]multiDoc{d.Emails, d.PhoneNumbers, d.Roles} {
		if len(l) > 1 {
			return validationException("Emails, PhoneNumbers and Roles hold at most one value")
		}
	}
	if len(d.Addresses) > 1 {
		return validationException("Addresses holds at most one value")
	}
	return nil
}

// UpdateUser replaces or removes user attributes by path.
func (e identityStoreAPI) UpdateUser(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.UserID, "UserId")
	if err != nil {
		return nil, err
	}
	if len(req.Operations) == 0 || len(req.Operations) > 100 {
		return nil, validationException("Operations must hold 1 to 100 operations")
	}
	ops := make([]patchOp, 0, len(req.Operations))
	for i, o := range req.Operations {
		path, err := required(o.AttributePath, fmt.Sprintf("Operations[%d].AttributePath", i))
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(strings.SplitN(path, ".", 2)[0]) {
		case "externalid", "externalids", "id", "groups":
			return nil, validationException("attribute %q cannot be updated", path)
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
			return resourceNotFoundException("USER", id)
		}
		if err != nil {
			return err
		}
		if req.Revision != nil && *req.Revision != strconv.FormatInt(u.Revision, 10) {
			return conflictException("the user was modified since revision " + *req.Revision)
		}
		m := toMap(&u.Doc)
		for _, op := range ops {
			if err := applyPath(m, op); err != nil {
				return asIdstoreError(err)
			}
		}
		n, err := normalizeObject(m, userSpecs, "")
		if err != nil {
			return asIdstoreError(err)
		}
		var d userDoc
		if err := fromMap(n, &d); err != nil {
			return asIdstoreError(err)
		}
		if err := validateIdstoreUser(&d); err != nil {
			return err
		}
		if d.Enterprise.empty() {
			d.Enterprise = nil
		}
		if err := e.checkManager(ctx, tx, &d, id); err != nil {
			return asIdstoreError(err)
		}
		u.Doc = d
		u.Modified = time.Now().UTC()
		return e.store.updateUser(ctx, tx, &u)
	})
	if errors.Is(err, errDuplicate) {
		return nil, conflictException(detailDuplicate)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"IdentityStoreId": e.storeID, "UserId": u.ID, "Revision": strconv.FormatInt(u.Revision, 10)}, nil
}

// DeleteUser deletes a user and its memberships.
func (e identityStoreAPI) DeleteUser(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.UserID, "UserId")
	if err != nil {
		return nil, err
	}
	if err := e.store.deleteUser(ctx, id); errors.Is(err, errNotFound) {
		return nil, resourceNotFoundException("USER", id)
	} else if err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}
