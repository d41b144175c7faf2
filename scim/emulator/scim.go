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

	"github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
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

// scimOp names the SCIM operation of a request (as in AWS's SCIM API reference), or "" for an
// unknown endpoint, and whether the method is allowed there.
func scimOp(method, rel string) (op string, known bool) {
	seg := strings.Split(strings.Trim(rel, "/"), "/")
	switch {
	case len(seg) == 1 && seg[0] == "Users":
		return map[string]string{http.MethodGet: "ListUsers", http.MethodPost: "CreateUser"}[method], true
	case len(seg) == 2 && seg[0] == "Users" && seg[1] != "" && !strings.HasPrefix(seg[1], "."):
		return map[string]string{http.MethodGet: "GetUser", http.MethodPut: "PutUser",
			http.MethodPatch: "PatchUser", http.MethodDelete: "DeleteUser"}[method], true
	case len(seg) == 1 && seg[0] == "Groups":
		return map[string]string{http.MethodGet: "ListGroups", http.MethodPost: "CreateGroup"}[method], true
	case len(seg) == 2 && seg[0] == "Groups" && seg[1] != "" && !strings.HasPrefix(seg[1], "."):
		return map[string]string{http.MethodGet: "GetGroup", http.MethodPatch: "PatchGroup",
			http.MethodDelete: "DeleteGroup"}[method], true
	case len(seg) == 1 && seg[0] == "ServiceProviderConfig":
		return map[string]string{http.MethodGet: "GetServiceProviderConfig"}[method], true
	case len(seg) == 1 && seg[0] == "Schemas":
		return map[string]string{http.MethodGet: "ListSchemas"}[method], true
	case len(seg) == 2 && seg[0] == "Schemas":
		return map[string]string{http.MethodGet: "GetSchema"}[method], true
	case len(seg) == 1 && seg[0] == "ResourceTypes":
		return map[string]string{http.MethodGet: "ListResourceTypes"}[method], true
	case len(seg) == 2 && seg[0] == "ResourceTypes":
		return map[string]string{http.MethodGet: "GetResourceType"}[method], true
	}
	return "", false
}

func (e *Emulator) serveSCIM(w http.ResponseWriter, r *http.Request, rel string) {
	if !e.bearerOK(r) {
		writeSCIMError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	op, known := scimOp(r.Method, rel)
	if !known {
		writeSCIMError(w, http.StatusNotFound, "Specified endpoint does not exist.")
		return
	}
	if op == "" {
		writeSCIMError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not supported on %s", r.Method, rel))
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
	e.count("scim." + op)
	if _, err := readBody(r); err != nil {
		ae := asAPIError(err)
		writeSCIMError(w, ae.status, ae.detail)
		return
	}
	switch op {
	case "ListUsers":
		e.listUsers(w, r)
		return
	case "ListGroups":
		e.listGroups(w, r)
		return
	case "PatchUser", "PatchGroup":
		// The library's PATCH validation rejects forms Identity Center accepts (a bare manager
		// id, for one) and reports only generic details; PATCH is served here.
		e.patch(w, r, op, rel)
		return
	case "CreateUser", "PutUser", "CreateGroup":
		// Check first, so the client gets our specific detail rather than the library's generic one.
		body, _ := readBody(r)
		var err error
		if op == "CreateGroup" {
			_, err = decodeGroup(body)
		} else {
			_, err = decodeUser(body)
		}
		if err != nil {
			e.sendSCIMError(w, r, err)
			return
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = rel
	r2.URL.RawPath = ""
	r2.Body = r.Body
	rw := &errorRewriter{ResponseWriter: w}
	e.lib.ServeHTTP(rw, r2)
	rw.finish()
}

// userAttributes renders a stored user as SCIM attributes (without id, schemas and meta).
func userAttributes(u *userRec) map[string]any {
	m := toMap(&u.Doc)
	delete(m, "externalId")
	m["active"] = u.Doc.active()
	return m
}

func metaVersion(rev int64) string { return fmt.Sprintf(`W/"%d"`, rev) }

func (e *Emulator) userResource(u *userRec) scim.Resource {
	res := scim.Resource{ID: u.ID, Attributes: userAttributes(u),
		Meta: scim.Meta{Created: &u.Created, LastModified: &u.Modified, Version: metaVersion(u.Revision)}}
	if u.Doc.ExternalID != "" {
		res.ExternalID = optional.NewString(u.Doc.ExternalID)
	}
	return res
}

func groupAttributes(g *groupRec) map[string]any {
	return map[string]any{"displayName": g.DisplayName, "members": []any{}}
}

// groupResourceCtx is groupResource with the members filled in when MembersInListings is set.
func (e *Emulator) groupResourceCtx(ctx context.Context, g *groupRec) (scim.Resource, error) {
	res := e.groupResource(g)
	if !e.listMem {
		return res, nil
	}
	ms, err := e.store.queryMembers(ctx, nil, "membersOfGroup", g.ID, "", everything)
	if err != nil {
		return scim.Resource{}, err
	}
	members := make([]any, 0, len(ms))
	for _, m := range ms {
		members = append(members, map[string]any{"value": m.UserID, "type": "User"})
	}
	res.Attributes["members"] = members
	return res, nil
}

func (e *Emulator) groupResource(g *groupRec) scim.Resource {
	res := scim.Resource{ID: g.ID, Attributes: groupAttributes(g),
		Meta: scim.Meta{Created: &g.Created, LastModified: &g.Modified, Version: metaVersion(g.Revision)}}
	if g.ExternalID != "" {
		res.ExternalID = optional.NewString(g.ExternalID)
	}
	return res
}

// fullResource renders a resource for a list response the way the library renders single ones.
func fullResource(res scim.Resource, resourceType string, schemas []string) map[string]any {
	m := res.Attributes
	m["id"] = res.ID
	if res.ExternalID.Present() {
		m["externalId"] = res.ExternalID.Value()
	}
	m["schemas"] = schemas
	m["meta"] = map[string]any{
		"resourceType": resourceType,
		"created":      res.Meta.Created.Format(time.RFC3339),
		"lastModified": res.Meta.LastModified.Format(time.RFC3339),
		"version":      res.Meta.Version,
		"location":     resourceType + "s/" + res.ID,
	}
	return m
}

// checkManager verifies that a manager reference names another existing user.
func (e *Emulator) checkManager(ctx context.Context, tx *sql.Tx, d *userDoc, self string) error {
	if d.Enterprise == nil || d.Enterprise.Manager == nil {
		return nil
	}
	mid := d.Enterprise.Manager.Value
	if mid == self {
		return badRequest("manager.value must not name the user itself")
	}
	ok, err := e.store.userExists(ctx, tx, mid)
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("manager.value %q does not name an existing user", mid)
	}
	return nil
}

func userNotFound(id string) *apiError { return notFound("User %s not found.", id) }

func groupNotFound(id string) *apiError { return notFound("Group %s not found.", id) }

// userHandler serves /Users through the elimity-com/scim server.
type userHandler struct{ e *Emulator }

var _ scim.ResourceHandler = (*userHandler)(nil)

func (h *userHandler) Create(r *http.Request, _ scim.ResourceAttributes) (scim.Resource, error) {
	u, err := h.e.createUser(r.Context(), r)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	return h.e.userResource(&u), nil
}

func (e *Emulator) createUser(ctx context.Context, r *http.Request) (userRec, error) {
	body, err := readBody(r)
	if err != nil {
		return userRec{}, err
	}
	d, err := decodeUser(body)
	if err != nil {
		return userRec{}, err
	}
	now := time.Now().UTC()
	u := userRec{ID: e.newID(), Doc: d, Created: now, Modified: now, Revision: 1, CreatedBy: "scim"}
	err = e.store.inTx(ctx, func(tx *sql.Tx) error {
		if err := e.checkManager(ctx, tx, &u.Doc, u.ID); err != nil {
			return err
		}
		return e.store.insertUser(ctx, tx, &u)
	})
	if errors.Is(err, errDuplicate) {
		return u, conflict(detailDuplicate)
	}
	return u, err
}

func (h *userHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	u, err := h.e.store.getUser(r.Context(), nil, id)
	if errors.Is(err, errNotFound) {
		err = userNotFound(id)
	}
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	return h.e.userResource(&u), nil
}

func (h *userHandler) GetAll(*http.Request, scim.ListRequestParams) (scim.Page, error) {
	return scim.Page{}, errNotReached
}

func (h *userHandler) Replace(r *http.Request, id string, _ scim.ResourceAttributes) (scim.Resource, error) {
	body, err := readBody(r)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	d, err := decodeUser(body)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	u, err := h.e.updateUser(r.Context(), id, func(*userDoc) (userDoc, error) { return d, nil })
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	return h.e.userResource(&u), nil
}

// updateUser loads a user, computes its new document with change and stores it.
func (e *Emulator) updateUser(ctx context.Context, id string, change func(*userDoc) (userDoc, error)) (userRec, error) {
	var u userRec
	err := e.store.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = e.store.getUser(ctx, tx, id)
		if errors.Is(err, errNotFound) {
			return userNotFound(id)
		}
		if err != nil {
			return err
		}
		d, err := change(&u.Doc)
		if err != nil {
			return err
		}
		if err := e.checkManager(ctx, tx, &d, id); err != nil {
			return err
		}
		u.Doc = d
		u.Modified = time.Now().UTC()
		return e.store.updateUser(ctx, tx, &u)
	})
	if errors.Is(err, errDuplicate) {
		return u, conflict(detailDuplicate)
	}
	return u, err
}

func (h *userHandler) Delete(r *http.Request, id string) error {
	err := h.e.store.deleteUser(r.Context(), id)
	if errors.Is(err, errNotFound) {
		err = userNotFound(id)
	}
	if err != nil {
		return h.e.toLibError(r, err)
	}
	return nil
}

func (h *userHandler) Patch(r *http.Request, id string, _ []scim.PatchOperation) (scim.Resource, error) {
	u, err := h.patch(r, id)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	return h.e.userResource(&u), nil
}

func (h *userHandler) patch(r *http.Request, id string) (userRec, error) {
	body, err := readBody(r)
	if err != nil {
		return userRec{}, err
	}
	ops, err := decodePatch(body)
	if err != nil {
		return userRec{}, err
	}
	if err := checkUserPatchRules(ops); err != nil {
		return userRec{}, err
	}
	return h.e.updateUser(r.Context(), id, func(d *userDoc) (userDoc, error) { return applyUserPatch(d, ops) })
}

// groupHandler serves /Groups through the elimity-com/scim server.
type groupHandler struct{ e *Emulator }

var _ scim.ResourceHandler = (*groupHandler)(nil)

func (h *groupHandler) Create(r *http.Request, _ scim.ResourceAttributes) (scim.Resource, error) {
	body, err := readBody(r)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	d, err := decodeGroup(body)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	uids := make([]string, 0, len(d.Members))
	for _, m := range d.Members {
		uids = append(uids, m.Value)
	}
	g, err := h.e.createGroup(r.Context(), d.DisplayName, d.ExternalID, "", "scim", uids)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	return h.e.groupResource(&g), nil
}

func (e *Emulator) createGroup(ctx context.Context, name, externalID, description, by string, members []string) (groupRec, error) {
	now := time.Now().UTC()
	g := groupRec{ID: e.newID(), DisplayName: name, ExternalID: externalID, Description: description,
		Created: now, Modified: now, Revision: 1, CreatedBy: by}
	err := e.store.inTx(ctx, func(tx *sql.Tx) error {
		if err := e.store.insertGroup(ctx, tx, &g); err != nil {
			return err
		}
		return e.addMembers(ctx, tx, g.ID, members, now)
	})
	if errors.Is(err, errDuplicate) {
		return g, conflict(detailDuplicate)
	}
	return g, err
}

func (e *Emulator) addMembers(ctx context.Context, tx *sql.Tx, gid string, uids []string, now time.Time) error {
	for _, uid := range uids {
		ok, err := e.store.userExists(ctx, tx, uid)
		if err != nil {
			return err
		}
		if !ok {
			return badRequest("member %q does not name an existing user", uid)
		}
		if _, err := e.store.addMember(ctx, tx, gid, uid, e.newID(), now); err != nil {
			return err
		}
	}
	return nil
}

func (h *groupHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	g, err := h.e.store.getGroup(r.Context(), nil, id)
	if errors.Is(err, errNotFound) {
		err = groupNotFound(id)
	}
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	res, err := h.e.groupResourceCtx(r.Context(), &g)
	if err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	return res, nil
}

func (h *groupHandler) GetAll(*http.Request, scim.ListRequestParams) (scim.Page, error) {
	return scim.Page{}, errNotReached
}

func (h *groupHandler) Replace(r *http.Request, _ string, _ scim.ResourceAttributes) (scim.Resource, error) {
	return scim.Resource{}, h.e.toLibError(r, badRequest("PUT is not supported for groups"))
}

func (h *groupHandler) Delete(r *http.Request, id string) error {
	err := h.e.store.deleteGroup(r.Context(), id)
	if errors.Is(err, errNotFound) {
		err = groupNotFound(id)
	}
	if err != nil {
		return h.e.toLibError(r, err)
	}
	return nil
}

func (h *groupHandler) Patch(r *http.Request, id string, _ []scim.PatchOperation) (scim.Resource, error) {
	if _, err := h.patch(r, id); err != nil {
		return scim.Resource{}, h.e.toLibError(r, err)
	}
	// Identity Center answers a group PATCH with 204 No Content.
	return scim.Resource{}, nil
}

func (h *groupHandler) patch(r *http.Request, id string) (struct{}, error) {
	body, err := readBody(r)
	if err != nil {
		return struct{}{}, err
	}
	ops, err := decodePatch(body)
	if err != nil {
		return struct{}{}, err
	}
	gp, err := planGroupPatch(ops, h.e.rfc)
	if err != nil {
		return struct{}{}, err
	}
	return struct{}{}, h.e.applyGroupPatch(r.Context(), id, gp)
}

func (e *Emulator) applyGroupPatch(ctx context.Context, id string, gp groupPatch) error {
	now := time.Now().UTC()
	err := e.store.inTx(ctx, func(tx *sql.Tx) error {
		g, err := e.store.getGroup(ctx, tx, id)
		if errors.Is(err, errNotFound) {
			return groupNotFound(id)
		}
		if err != nil {
			return err
		}
		if gp.displayName != nil || gp.externalID != nil {
			if gp.displayName != nil {
				g.DisplayName = *gp.displayName
			}
			if gp.externalID != nil {
				g.ExternalID = *gp.externalID
			}
			g.Modified = now
			if err := e.store.updateGroup(ctx, tx, &g); err != nil {
				return err
			}
		}
		if gp.removeAll {
			if _, err := e.store.q(ctx, tx, "membersDeleteGroup").ExecContext(ctx, id); err != nil {
				return fmt.Errorf("remove all members: %w", err)
			}
		}
		if err := e.addMembers(ctx, tx, id, gp.add, now); err != nil {
			return err
		}
		for _, uid := range gp.remove {
			if _, err := e.store.removeMember(ctx, tx, id, uid); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errDuplicate) {
		return conflict(detailDuplicate)
	}
	return err
}

// patch serves PATCH /Users/{id} (200 with the user) and PATCH /Groups/{id} (204).
func (e *Emulator) patch(w http.ResponseWriter, r *http.Request, op, rel string) {
	id := rel[strings.LastIndex(rel, "/")+1:]
	if op == "PatchGroup" {
		if _, err := (&groupHandler{e: e}).patch(r, id); err != nil {
			e.sendSCIMError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	u, err := (&userHandler{e: e}).patch(r, id)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	res := fullResource(e.userResource(&u), "User", []string{userSchemaURN, enterpriseSchemaURN})
	w.Header().Set("Etag", metaVersion(u.Revision))
	writeJSON(w, http.StatusOK, "application/scim+json", res)
}
