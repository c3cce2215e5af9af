#pragma once
// temp_dir: a fresh directory under $TMPDIR (or /tmp), removed with all its
// contents when the object goes away.

#include <filesystem>

namespace runnel::testing {

class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;             // one owner removes it
  temp_dir& operator=(const temp_dir&) = delete;  // one owner removes it
  temp_dir(temp_dir&&) = delete;                  // tests keep it on the stack
  temp_dir& operator=(temp_dir&&) = delete;       // tests keep it on the stack

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& p) const { return path_ / p; }

 private:
  std::filesystem::path path_;
};

}  // namespace runnel::testing
