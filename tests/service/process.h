// Child processes for integration tests: spawn a real binary with its
// output in files, signal it, wait for it with a bound, and always reap it
// (the destructor SIGKILLs a child that is still running). Not thread-safe.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace driftwatch::testing {

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { KillAndReap(); }

  // Starts argv[0] with stdout / stderr appended to the given files.
  // False (and errno-style message in `error`) when it cannot be spawned.
  bool Start(const std::vector<std::string>& argv, const std::string& stdout_path,
             const std::string& stderr_path, std::string* error) {
    KillAndReap();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      *error = "posix_spawn " + argv[0] + ": " + std::strerror(rc);
      return false;
    }
    return true;
  }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  void Signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // Waits up to `timeout` for the child to exit. Its exit code, or
  // 128 + signal when a signal ended it; nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -1;
      }
      if (r < 0 || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // SIGKILL and reap; a no-op when nothing is running.
  void KillAndReap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// Polls `path` until it holds a full line (the writer's newline) or
// `timeout` passes; returns its text, or nullopt. Gives up early when
// `child` has exited.
inline std::optional<std::string> WaitForFileLine(const std::filesystem::path& path,
                                                  std::chrono::milliseconds timeout,
                                                  const ChildProcess* child = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadWholeFile(path);
    if (!text.empty() && (text.back() == '\n' || text.find("metrics=") != std::string::npos)) {
      return text;
    }
    if (child != nullptr && child->running()) {
      siginfo_t info{};
      // WNOWAIT: look without reaping, so child->Wait still sees the exit.
      if (::waitid(P_PID, static_cast<id_t>(child->pid()), &info, WEXITED | WNOHANG | WNOWAIT) ==
              0 &&
          info.si_pid != 0) {
        return std::nullopt;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

struct CommandResult {
  int exit_code = -1;  // nullopt-like -1 on timeout or spawn failure
  std::string out;
  std::string err;
};

// Runs a command to completion (bounded by `timeout`), capturing its output
// through files in `dir`.
inline CommandResult RunCommand(const std::vector<std::string>& argv,
                                const std::filesystem::path& dir,
                                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  static int counter = 0;
  const std::string stem = "cmd" + std::to_string(counter++);
  const std::filesystem::path out = dir / (stem + ".out"), err = dir / (stem + ".err");
  CommandResult result;
  ChildProcess child;
  std::string error;
  if (!child.Start(argv, out.string(), err.string(), &error)) {
    result.err = error;
    return result;
  }
  result.exit_code = child.Wait(timeout).value_or(-1);
  result.out = ReadWholeFile(out);
  result.err = ReadWholeFile(err);
  return result;
}

}  // namespace driftwatch::testing
