#pragma once
// committer: a consumer's offset commits, sent in the order they were made
// with up to `max_in_flight` OffsetCommit requests on the wire at once.
// Order holds because every commit of a group goes down the one connection
// to its coordinator, which answers in order and applies commits in the
// order it read them.
//
// A commit refused because the coordinator moved, the connection dropped
// or the member's epoch moved while it travelled is sent again (after a
// backoff, within the pool's timeout), but only with the partitions that
// no later commit carries: a retry never overwrites a newer offset, so
// retries need no order among themselves. A commit whose partitions all
// went to later commits before it could be retried fails with the error
// that stopped it.
//
// commit() sends at once from the caller's thread when it can; a thread of
// the committer's own finds the coordinator and waits out backoffs.
// Outcomes run on the pool's I/O thread or that thread: `done` must be
// short and must not call the committer. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "client/src/connection_pool.h"
#include "runnel/errors.h"
#include "runnel/group.h"

namespace runnel::client {

class committer {
 public:
  using offsets = std::map<topic_partition_ref, offset_and_metadata>;
  using outcome = std::move_only_function<void(const result<void>&)>;
  // The member id and epoch to commit as, at the moment of sending; an
  // error fails the commit (a member that has not joined yet).
  using identity = std::function<result<std::pair<std::string, std::int32_t>>()>;

  committer(connection_pool& pool, std::string group, identity who, std::size_t max_in_flight);
  // finish(); the pool must outlive the committer.
  ~committer();
  committer(const committer&) = delete;             // owns a thread
  committer& operator=(const committer&) = delete;  // owns a thread
  committer(committer&&) = delete;                  // callbacks hold `this`
  committer& operator=(committer&&) = delete;       // callbacks hold `this`

  // Queues a commit of `o` after every earlier one; `done` gets its outcome.
  void commit(offsets o, outcome done);
  // commit() and wait for the outcome. Not from the pool's I/O thread.
  result<void> commit_sync(offsets o);
  // Waits until every commit has its outcome (each gives up at its
  // deadline), then ends the thread.
  void finish();

 private:
  using clock_type = std::chrono::steady_clock;
  struct job {
    std::uint64_t seq = 0;
    offsets pending;  // still to be committed
    outcome done;
    clock_type::time_point deadline;
    clock_type::time_point not_before{};
    std::chrono::milliseconds backoff{20};
    int stale_retries = 0;
  };

  void run();
  // Sends what can go now (lock held): queue head first, while requests in
  // flight stay under the bound, the coordinator is known and no backoff
  // holds the head back.
  void pump();
  void answered(std::uint64_t seq, result<response> r);
  // Wakes run() when something waits that pump() could not send (lock held).
  void wake_thread();
  // Ends `j` with `r` (lock held).
  void settle(job& j, const result<void>& r);
  // `j` again later, with only the partitions no later commit carries;
  // fails it with `why` past its deadline (lock held).
  void retry(std::unique_ptr<job> j, const error& why, std::chrono::milliseconds backoff);

  connection_pool& pool_;
  const std::string group_;
  const identity who_;
  const std::size_t max_in_flight_;

  std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  std::deque<std::unique_ptr<job>> queue_;             // not sent yet; retries in front
  std::map<std::uint64_t, std::unique_ptr<job>> sent_;  // on the wire, by seq
  std::map<topic_partition_ref, std::uint64_t> newest_;  // seq of the newest commit carrying each partition
  std::uint64_t next_seq_ = 1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace runnel::client
