// A real runnel::processor process for the DLQ tests. Its handler fails
// every record whose value starts with "poison" for good (dead) and
// finishes every other; it logs each record it finished and each DLQ copy
// acknowledged. SIGTERM: stop (commit, leave), exit 0.
//
//   dlq_processor_child BOOTSTRAP GROUP TOPIC LOG [--session-ms N] [--kill-after-dlq] [--any-dlq]
//
// --kill-after-dlq: SIGKILL itself in on_dead_letter, i.e. after the first
// DLQ write was acknowledged and before its offset can be committed (the
// widest window there is). --any-dlq: accept a DLQ topic without a
// message-id window (the negative control).
//
// Log lines:
//   P <partition> <offset> <value>                         finished
//   D <partition> <offset> <dlq partition> <dlq offset> <duplicate 0|1>   in the DLQ

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "runnel/processor.h"
#include "tests/integration/child_log.h"

namespace {

runnel::processor* running = nullptr;
int log_fd = -1;

void write_line(const std::string& s) { runnel::testing::append_line(log_fd, s); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: dlq_processor_child BOOTSTRAP GROUP TOPIC LOG [--session-ms N] [--kill-after-dlq] [--any-dlq]\n");
    return 2;
  }
  bool kill_after_dlq = false;
  runnel::processor_config cfg;
  cfg.consumer.bootstrap = argv[1];
  cfg.consumer.group_id = argv[2];
  cfg.consumer.fetch_max_wait = std::chrono::milliseconds(100);
  cfg.topics = {argv[3]};
  cfg.commit_interval = std::chrono::milliseconds(200);
  cfg.retry.max_attempts = 2;
  cfg.retry.initial_backoff = std::chrono::milliseconds(20);
  for (int i = 5; i < argc; ++i) {
    if (std::strcmp(argv[i], "--session-ms") == 0 && i + 1 < argc) {
      cfg.consumer.session_timeout = std::chrono::milliseconds(std::atoi(argv[++i]));
    }
    if (std::strcmp(argv[i], "--kill-after-dlq") == 0) kill_after_dlq = true;
    if (std::strcmp(argv[i], "--any-dlq") == 0) cfg.retry.require_dlq_dedup_window = false;
  }
  log_fd = ::open(argv[4], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) return 2;
  cfg.on_dead_letter = [kill_after_dlq](const runnel::record_view& r, const runnel::dead_letter& d) {
    write_line("D " + std::to_string(r.partition) + " " + std::to_string(r.offset) + " " + std::to_string(d.partition) +
               " " + std::to_string(d.dlq_offset) + " " + (d.duplicate ? "1" : "0") + "\n");
    if (kill_after_dlq) ::kill(::getpid(), SIGKILL);
  };
  auto p = runnel::processor::connect(cfg);
  if (!p) {
    std::fprintf(stderr, "connect: %s\n", p.error().what().c_str());
    return 1;
  }
  running = p->get();
  std::signal(SIGTERM, [](int) {
    if (running) running->stop();  // an atomic store
  });
  auto r = (*p)->run([](const runnel::record_view& rec) {
    const std::string_view v = rec.value.value_or("");
    if (v.starts_with("poison")) return runnel::process_result::permanent("poisoned: " + std::string(v));
    write_line("P " + std::to_string(rec.partition) + " " + std::to_string(rec.offset) + " " + std::string(v) + "\n");
    return runnel::process_result::ok();
  });
  if (!r) {
    std::fprintf(stderr, "run: %s\n", r.error().what().c_str());
    return 1;
  }
  return 0;
}
