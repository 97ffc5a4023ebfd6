// Package consumers runs noesis on NATS JetStream: it declares the streams and
// durable consumers, runs one worker pool per stage, maps each handler result
// to an ack, a nak or a dead letter, and publishes outputs with ids that make
// a redelivered thought's second output a no-op.
//
// Delivery semantics, in one place:
//   - output published and PubAck'd -> the input is acked (a lost ack is a
//     redelivery, whose output the outputs stream drops as a duplicate);
//   - the thought does not ask for this stage -> acked, nothing published;
//   - bad input (pipeline.ErrBadInput) or a permanent failure
//     (pipeline.ErrPermanent) -> dead letter, then Term; a thought no stage
//     can read has one letter for all of them (StageInput);
//   - the output refused for want of room (ErrStreamFull) -> the thought is
//     held, heartbeating, and its output published again until there is
//     room; no delivery is spent;
//   - any other failure -> NakWithDelay with exponential backoff, until
//     MaxDeliver; the last failed delivery -> dead letter, then Term;
//   - a model call still running -> InProgress every AckWait/3, so a slow call
//     is never handed to a second worker.
package consumers
