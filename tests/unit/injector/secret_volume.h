#pragma once

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/common/read_file.h"

namespace credsync::testing {

// A directory laid out as kubelet lays out a Secret volume: the files sit
// in a timestamped directory, `..data` links to it, and tls.crt/tls.key
// link through `..data`. An update writes a new timestamped directory and
// renames a new `..data` link over the old one, so a reader never sees a
// mix of old and new files.
class SecretVolume {
 public:
  explicit SecretVolume(std::string root) : root_(std::move(root)) {}

  std::string certPath() const { return root_ + "/tls.crt"; }
  std::string keyPath() const { return root_ + "/tls.key"; }

  // Publishes a new version holding `cert_pem` and `key_pem`.
  void publish(const std::string& cert_pem, const std::string& key_pem) {
    const std::string version = "..v" + std::to_string(++versions_);
    ASSERT_EQ(mkdir((root_ + "/" + version).c_str(), 0755), 0);
    writeFile(root_ + "/" + version + "/tls.crt", cert_pem);
    writeFile(root_ + "/" + version + "/tls.key", key_pem);
    const std::string staging = root_ + "/..data_tmp";
    ASSERT_EQ(symlink(version.c_str(), staging.c_str()), 0);
    ASSERT_EQ(rename(staging.c_str(), (root_ + "/..data").c_str()), 0);
    if (versions_ == 1) {
      ASSERT_EQ(symlink("..data/tls.crt", certPath().c_str()), 0);
      ASSERT_EQ(symlink("..data/tls.key", keyPath().c_str()), 0);
    }
  }

 private:
  const std::string root_;
  int versions_ = 0;
};

}  // namespace credsync::testing
