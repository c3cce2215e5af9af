#pragma once
// runnel::share_consumer: a member of a share group (a queue on the log,
// ADR 0016): any number of members read the same partitions, each record is
// handed to one member at a time under a lock, and the member acknowledges
// it: accept (done), release (give it to the next fetch) or reject (never
// redeliver). A record whose lock expires goes to another member; its
// delivery_count says how often it was handed out.
//
// Standalone and cluster mode (fetches and acknowledgements go to each
// partition's leader). Not thread-safe: one thread polls. The processing
// loop with retries is runnel::share_processor (share_processor.h).
//
// Implicit acknowledgement (the default): the next poll() (or
// commit_sync(), close()) accepts every record the previous poll returned.
// Explicit: acknowledge() each record; what is not acknowledged stays the
// member's until its lock expires. Acknowledgements travel with the next
// fetch, or with commit_sync() at once; the broker makes them durable
// before it answers.
//
// Membership: poll() heartbeats when the broker's interval is due. Poll at
// least once per session timeout (group.consumer.session.timeout.ms) or the
// member leaves the group.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runnel/errors.h"
#include "runnel/record.h"

namespace runnel {

struct share_consumer_config {
  std::string bootstrap = "127.0.0.1:9292";
  std::string client_id = "runnel-share-consumer";
  std::string group_id;                   // required
  std::int32_t max_poll_records = 500;    // per partition and poll
  std::chrono::milliseconds fetch_max_wait{500};
  std::int32_t fetch_max_bytes = 50 << 20;
  std::chrono::milliseconds request_timeout{30'000};
  bool explicit_acknowledgement = false;
};

enum class acknowledge_type : std::uint8_t { accept = 1, release = 2, reject = 3 };

class share_consumer {
 public:
  static result<std::unique_ptr<share_consumer>> connect(share_consumer_config cfg);
  ~share_consumer();  // close()
  share_consumer(const share_consumer&) = delete;             // owns its connections
  share_consumer& operator=(const share_consumer&) = delete;  // owns its connections
  share_consumer(share_consumer&&) = delete;                  // impl holds `this`
  share_consumer& operator=(share_consumer&&) = delete;       // impl holds `this`

  // Joins the group (or changes the subscription): the member may then
  // fetch from every partition of these topics.
  result<void> subscribe(const std::vector<std::string>& topics);
  // Acquired records, waiting up to `timeout` for some. Sends the pending
  // acknowledgements first.
  result<consumer_records> poll(std::chrono::milliseconds timeout);
  // Explicit mode: how this member is done with `r` (from the last poll).
  result<void> acknowledge(const record_view& r, acknowledge_type type);
  // Sends the pending acknowledgements now; the first refused one is the error.
  result<void> commit_sync();
  // Acknowledgement errors that came back with fetches since the last call.
  std::vector<error> take_acknowledgement_errors();
  // Sends the pending acknowledgements and leaves the group.
  result<void> close();
  [[nodiscard]] std::pair<std::string, std::int32_t> group_member() const;

  struct impl;

 private:
  explicit share_consumer(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel
