package emulator

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"
)

// userResource renders a stored user as a SCIM resource.
func userResource(u *userRec) resource {
	attrs := toMap(&u.Doc)
	delete(attrs, "externalId")
	attrs["active"] = u.Doc.active()
	return resource{resourceType: "User", schemas: userSchemas, id: u.ID, externalID: u.Doc.ExternalID,
		attributes: attrs, created: u.Created, modified: u.Modified, revision: u.Revision}
}

func userNotFound(id string) *apiError { return notFound("User %s not found.", id) }

// createUser serves POST /Users: 201 with the user.
func (e *Emulator) createUser(w http.ResponseWriter, r *http.Request, body []byte) {
	d, err := decodeUser(body)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	u, err := e.insertUser(r.Context(), d, "scim")
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeResource(w, http.StatusCreated, userResource(&u))
}

// insertUser stores a new user written through createdBy ("scim" or "identitystore").
func (e *Emulator) insertUser(ctx context.Context, d userDoc, createdBy string) (userRec, error) {
	now := time.Now().UTC()
	u := userRec{ID: e.newID(), Doc: d, Created: now, Modified: now, Revision: 1, CreatedBy: createdBy}
	err := e.store.inTx(ctx, func(tx *sql.Tx) error {
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

// getUser serves GET /Users/{id}.
func (e *Emulator) getUser(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("id")
	u, err := e.store.getUser(r.Context(), nil, id)
	if errors.Is(err, errNotFound) {
		err = userNotFound(id)
	}
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, userResource(&u))
}

// replaceUser serves PUT /Users/{id}: 200 with the user.
func (e *Emulator) replaceUser(w http.ResponseWriter, r *http.Request, body []byte) {
	d, err := decodeUser(body)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	u, err := e.updateUser(r.Context(), r.PathValue("id"), func(*userDoc) (userDoc, error) { return d, nil })
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, userResource(&u))
}

// patchUser serves PATCH /Users/{id}: 200 with the user. The patch is decoded and applied here
// with Identity Center's rules (see patch.go).
func (e *Emulator) patchUser(w http.ResponseWriter, r *http.Request, body []byte) {
	ops, err := decodePatch(body)
	if err == nil {
		err = checkUserPatchRules(ops)
	}
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	u, err := e.updateUser(r.Context(), r.PathValue("id"), func(d *userDoc) (userDoc, error) { return applyUserPatch(d, ops) })
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, userResource(&u))
}

// deleteUser serves DELETE /Users/{id}: 204.
func (e *Emulator) deleteUser(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("id")
	err := e.store.deleteUser(r.Context(), id)
	if errors.Is(err, errNotFound) {
		err = userNotFound(id)
	}
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeNoContent(w)
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
