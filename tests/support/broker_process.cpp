#include "tests/support/broker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <cstring>
#include <stdexcept>

#include "schemas/assert.h"

extern char** environ;

namespace runnel::testing {

// fork + exec rather than posix_spawn: the child asks for SIGKILL when the
// test process dies (PR_SET_PDEATHSIG), so a test killed by a timeout never
// leaves a broker behind. Only async-signal-safe calls between fork and exec.
pid_t spawn_process(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd,
                    const std::vector<std::string>& extra_env) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;  // built before the fork: no allocation after it
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  for (const auto& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  RUNNEL_ASSERT(pid >= 0, "fork: {}", std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died already
    if (in_fd >= 0) ::dup2(in_fd, 0);
    if (out_fd >= 0) ::dup2(out_fd, 1);
    if (err_fd >= 0) ::dup2(err_fd, 2);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  return pid;
}

broker_process::broker_process(std::filesystem::path data_dir, std::vector<std::string> extra_args,
                               const std::vector<std::string>& extra_env, const std::vector<std::string>& launcher) {
  const std::vector<std::string> own{RUNNEL_BROKER_BIN, "--data-dir", data_dir.string(), "--listen", "127.0.0.1:0",
                                     "--shards", "2"};
  std::vector<std::string> argv = launcher;
  argv.insert(argv.end(), own.begin(), own.end());
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  int out[2];
  RUNNEL_ASSERT(::pipe2(out, O_CLOEXEC) == 0, "pipe");
  const std::string log = (data_dir.parent_path() / (data_dir.filename().string() + ".broker.log")).string();
  const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_ = spawn_process(argv, -1, out[1], err, extra_env);
  ::close(out[1]);
  if (err >= 0) ::close(err);
  // "runnel-broker listening on HOST:PORT\n", within 20 s.
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  const auto colon = line.rfind(':');
  const auto at = line.find("listening on ");
  if (at == std::string::npos || colon == std::string::npos || colon < at) {
    kill9();
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > 2000) text = text.substr(text.size() - 2000);
    throw std::runtime_error("runnel-broker did not start; its log:\n" + text);
  }
  host_ = line.substr(at + 13, colon - at - 13);
  port_ = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

broker_process::~broker_process() { kill9(); }

int broker_process::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void broker_process::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

command_result run_command(const std::vector<std::string>& argv, const std::string& input, int timeout_s) {
  int in[2], out[2], err[2];
  RUNNEL_ASSERT(::pipe2(in, O_CLOEXEC) == 0 && ::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0, "pipe");
  const pid_t pid = spawn_process(argv, in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  std::size_t written = 0;
  if (input.empty()) {
    ::close(in[1]);
    in[1] = -1;
  } else {
    ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  }
  command_result r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool out_open = true, err_open = true;
  while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
    pollfd fds[3] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}, {in[1], POLLOUT, 0}};
    if (::poll(fds, 3, 100) <= 0) continue;
    char buf[4096];
    if (fds[0].revents != 0) {
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) out_open = false; else r.out.append(buf, static_cast<std::size_t>(n));
    }
    if (fds[1].revents != 0) {
      const ssize_t n = ::read(err[0], buf, sizeof buf);
      if (n <= 0) err_open = false; else r.err.append(buf, static_cast<std::size_t>(n));
    }
    if (in[1] >= 0 && fds[2].revents != 0) {
      const ssize_t n = ::write(in[1], input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 || written == input.size()) {
        ::close(in[1]);
        in[1] = -1;
      }
    }
  }
  if (in[1] >= 0) ::close(in[1]);
  ::close(out[0]);
  ::close(err[0]);
  if (out_open || err_open) ::kill(pid, SIGKILL);  // timed out
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace runnel::testing
