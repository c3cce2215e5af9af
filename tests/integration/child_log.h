#pragma once
// What the test children (group_consumer_child, dlq_processor_child) write
// to their logs: whole lines with write(2), so a kill -9 never leaves a
// line buffered; a child that cannot write its log exits 3.

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace runnel::testing {

inline void append_line(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) std::_Exit(3);
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace runnel::testing
