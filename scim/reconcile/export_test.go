package reconcile

// PlanWhole makes r plan its selective runs from the whole source and state store, then keep
// the selection's changes: the oracle that the slices are checked against.
func PlanWhole(r *Reconciler) { r.wholePlan = true }
