// Package modal is the Modal.com side of noesis: the deploy apps in this
// folder (vllm_app.py serves an OpenAI-compatible vLLM server on a chosen GPU
// with a 5-minute scale-down window and optional proxy auth; finetune_lora.py
// trains a LoRA adapter for it), the proxy-auth headers the endpoint expects,
// and the GPU price table of the seed report for cost estimates.
//
// The router reaches a Modal endpoint as a provider of kind "modal": the
// headers from Headers on every request, a cold-start timeout for the first
// call and the first after an idle scale-down window, and an optional warm-up
// call at start (MODAL_* settings).
package modal

import "time"

// Headers returns Modal's proxy-auth headers for a proxy token, or nil when
// the endpoint does not require proxy auth (both empty).
func Headers(key, secret string) map[string]string {
	if key == "" && secret == "" {
		return nil
	}
	return map[string]string{"Modal-Key": key, "Modal-Secret": secret}
}

// GPUHourPrice is the seed report's price table, USD per GPU-hour (approximate,
// as the seed gave them; check Modal's current prices before relying on them).
var GPUHourPrice = map[string]float64{
	"A100-40GB": 2.50,
	"A100-80GB": 3.50,
	"H100":      4.50,
}

// Cost estimates what n GPUs of a kind cost for d, and whether the kind is in the table.
func Cost(gpu string, n int, d time.Duration) (float64, bool) {
	p, ok := GPUHourPrice[gpu]
	if !ok {
		return 0, false
	}
	return p * float64(n) * d.Hours(), true
}
