package pipeline

import "context"

type tenantKey struct{}

// Tenant is whose thought a model call serves: its agent and the thought's
// priority. The router shares a model target's slots and the agents' quotas
// by it.
type Tenant struct {
	Agent, Priority string
	// FirstCome makes the call wait for a target's slot first come, first
	// served, not by priority and in turn between agents
	// (NOESIS_FAIR_SHARE=false). The agent's quotas hold either way.
	FirstCome bool
}

// WithTenant returns a context whose model calls serve tenant.
func WithTenant(ctx context.Context, tenant Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantOf returns the tenant ctx's calls serve; the zero Tenant when none
// was set (a call outside any thought: a warm-up, a benchmark).
func TenantOf(ctx context.Context) Tenant {
	t, _ := ctx.Value(tenantKey{}).(Tenant)
	return t
}
