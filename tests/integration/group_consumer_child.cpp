// A real consumer-group member process for the delivery tests. It
// subscribes, and for every record it processes appends one line to its
// log before the next poll; it commits what it processed every --commit-ms
// (and when partitions are revoked) and logs each commit once the
// coordinator acknowledged it. SIGTERM: commit, close (leave), exit 0.
//
//   group_consumer_child BOOTSTRAP GROUP TOPIC LOG [--instance ID] [--session-ms N] [--commit-ms N]
//
// Log lines (monotonic clock in ns, system-wide on Linux):
//   P <partition> <offset> <value> <member id> <member epoch> <ns>   processed
//   C <partition> <next offset> <member epoch> <ns>                  committed (acknowledged)
//   F <partition> <next offset> <error> <ns>                         commit refused
//   A|R|L <partition> <ns>                                           assigned / revoked / lost

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "runnel/consumer.h"
#include "tests/integration/child_log.h"

namespace {

std::atomic<bool> stop{false};
int log_fd = -1;

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void write_line(const std::string& s) { runnel::testing::append_line(log_fd, s); }

struct member_state {
  runnel::consumer* c = nullptr;
  std::map<runnel::topic_partition_ref, std::int64_t> processed;  // next offset per partition
  std::map<runnel::topic_partition_ref, std::int64_t> committed;

  void commit(const std::vector<runnel::topic_partition_ref>& which) {
    std::map<runnel::topic_partition_ref, runnel::offset_and_metadata> offsets;
    for (const auto& tp : which) {
      auto p = processed.find(tp);
      if (p == processed.end()) continue;
      auto c0 = committed.find(tp);
      if (c0 != committed.end() && c0->second == p->second) continue;
      offsets[tp] = runnel::offset_and_metadata{p->second, "child", -1, -1};
    }
    if (offsets.empty()) return;
    auto r = c->commit_sync(offsets);
    const auto epoch = c->group_member().second;
    std::string out;
    for (const auto& [tp, o] : offsets) {
      if (r) {
        committed[tp] = o.offset;
        out += "C " + std::to_string(tp.partition) + " " + std::to_string(o.offset) + " " + std::to_string(epoch) + " " +
               std::to_string(now_ns()) + "\n";
      } else {
        std::string what = r.error().what();
        for (auto& ch : what) {
          if (ch == ' ' || ch == '\n') ch = '_';
        }
        out += "F " + std::to_string(tp.partition) + " " + std::to_string(o.offset) + " " + what + " " +
               std::to_string(now_ns()) + "\n";
      }
    }
    write_line(out);
  }
};

class listener final : public runnel::rebalance_listener {
 public:
  explicit listener(member_state& s) : s_(s) {}
  void on_partitions_revoked(runnel::consumer& /*c*/, const std::vector<runnel::topic_partition_ref>& parts) override {
    s_.commit(parts);
    log("R", parts);
    for (const auto& tp : parts) s_.processed.erase(tp);
  }
  void on_partitions_assigned(runnel::consumer& /*c*/, const std::vector<runnel::topic_partition_ref>& parts) override {
    log("A", parts);
  }
  void on_partitions_lost(runnel::consumer& /*c*/, const std::vector<runnel::topic_partition_ref>& parts) override {
    log("L", parts);
    for (const auto& tp : parts) s_.processed.erase(tp);
  }

 private:
  void log(const char* what, const std::vector<runnel::topic_partition_ref>& parts) {
    std::string out;
    for (const auto& tp : parts) out += std::string(what) + " " + std::to_string(tp.partition) + " " + std::to_string(now_ns()) + "\n";
    write_line(out);
  }
  member_state& s_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: group_consumer_child BOOTSTRAP GROUP TOPIC LOG [--instance ID] [--session-ms N] [--commit-ms N]\n");
    return 2;
  }
  runnel::consumer_config cfg;
  cfg.bootstrap = argv[1];
  cfg.group_id = argv[2];
  const std::string topic = argv[3];
  cfg.enable_auto_commit = false;
  cfg.fetch_max_wait = std::chrono::milliseconds(100);
  int commit_ms = 200;
  for (int i = 5; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--instance") cfg.group_instance_id = argv[i + 1];
    else if (f == "--session-ms") cfg.session_timeout = std::chrono::milliseconds(std::atoi(argv[i + 1]));
    else if (f == "--commit-ms") commit_ms = std::atoi(argv[i + 1]);
  }
  log_fd = ::open(argv[4], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) return 2;
  std::signal(SIGTERM, [](int) { stop = true; });
  auto c = runnel::consumer::connect(cfg);
  if (!c) {
    std::fprintf(stderr, "connect: %s\n", c.error().what().c_str());
    return 1;
  }
  member_state st;
  st.c = c->get();
  listener l(st);
  if (auto r = (*c)->subscribe({topic}, &l); !r) return 1;
  auto next_commit = std::chrono::steady_clock::now() + std::chrono::milliseconds(commit_ms);
  while (!stop) {
    auto recs = (*c)->poll(std::chrono::milliseconds(100));
    if (!recs) {
      std::fprintf(stderr, "poll: %s\n", recs.error().what().c_str());
      continue;
    }
    const auto [member, epoch] = (*c)->group_member();
    std::string out;
    for (const auto& r : *recs) {
      out += "P " + std::to_string(r.partition) + " " + std::to_string(r.offset) + " " + std::string(*r.value) + " " + member +
             " " + std::to_string(epoch) + " " + std::to_string(now_ns()) + "\n";
      st.processed[{topic, r.partition}] = r.offset + 1;
    }
    if (!out.empty()) write_line(out);
    if (std::chrono::steady_clock::now() >= next_commit) {
      st.commit((*c)->assignment());
      next_commit = std::chrono::steady_clock::now() + std::chrono::milliseconds(commit_ms);
    }
  }
  st.commit((*c)->assignment());
  (void)(*c)->close();
  return 0;
}
