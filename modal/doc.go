// Package modal will hold the Modal.com side of noesis: the vLLM deploy app,
// the endpoint's proxy-auth headers, cold starts and warm-up, and the GPU cost
// model. Today a vLLM server on Modal is reached as any OpenAI-compatible
// endpoint (LLM_PROVIDER=openai with OPENAI_BASE_URL); nothing here is built yet.
package modal
