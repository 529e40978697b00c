package kafkatest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
)

// Version is the Apache Kafka release the tests run; kafkatest/pom.xml pins
// the same one.
const Version = "4.4.0"

// JarsEnv names a folder of broker jars to use instead of the cache.
const JarsEnv = "EXACTLY_KAFKA_JARS"

// moduleRoot is the folder holding go.mod: the folder above this file's.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("kafkatest: cannot find its own source file to locate kafkatest/pom.xml; set " + JarsEnv)
	}
	return filepath.Dir(filepath.Dir(file)), nil
}

// Jars returns the folder of the broker's jars: $EXACTLY_KAFKA_JARS, or
// .cache/kafka-<Version> of the module, which it fills once with Maven
// (mvn dependency:copy-dependencies of kafkatest/pom.xml) when it is
// missing. Test binaries of several packages may call it at once: a file
// lock lets one fetch while the others wait.
func Jars() (string, error) {
	if dir := os.Getenv(JarsEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "kafka_2.13-"+Version+".jar")); err != nil {
			return "", fmt.Errorf("kafkatest: %s=%s holds no kafka_2.13-%s.jar: %w", JarsEnv, dir, Version, err)
		}
		return dir, nil
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "", errors.New("kafkatest: java not found: the real-Kafka tests run Apache Kafka " + Version + " as jars and need Java 17 or later (apt-get install openjdk-17-jre-headless)")
	}
	return fetch("kafka-"+Version, filepath.Join("kafkatest", "pom.xml"), "the Kafka "+Version+" jars")
}

// StreamsTestVersion is the Kafka Streams release whose test jar holds the
// exactly-once system test (StreamsEosTest, EosTestDriver) that the EOS
// test runs; kafkatest/eos/pom.xml pins it. 4.4.0 publishes no test jar and
// 4.3.0's no longer holds the EOS test.
const StreamsTestVersion = "4.2.0"

// StreamsTestJars returns the folder holding the kafka-streams test jar and
// its dependencies: .cache/kafka-streams-test-<StreamsTestVersion> of the
// module, filled once with Maven from kafkatest/eos/pom.xml.
func StreamsTestJars() (string, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return "", errors.New("kafkatest: java not found: Kafka Streams' EOS test driver runs as jars and needs Java 17 or later (apt-get install openjdk-17-jre-headless)")
	}
	return fetch("kafka-streams-test-"+StreamsTestVersion, filepath.Join("kafkatest", "eos", "pom.xml"), "the kafka-streams "+StreamsTestVersion+" test jars")
}

// fetch returns .cache/<name> of the module, which it fills once with
// Maven (mvn dependency:copy-dependencies of the module's file pom) when it
// is missing. Test binaries of several packages may call it at once: a
// file lock lets one fetch while the others wait.
func fetch(name, pom, what string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cache := filepath.Join(root, ".cache")
	dir := filepath.Join(cache, name)
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("kafkatest: locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(done); err == nil {
		return dir, nil // another test binary fetched it meanwhile
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return "", fmt.Errorf("kafkatest: mvn not found: %s are missing from %s and Maven fetches them (apt-get install maven)", what, dir)
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	cmd := exec.Command("mvn", "-q", "-B", "-f", filepath.Join(root, pom),
		"dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kafkatest: fetching %s with Maven failed (is the Maven repository reachable?): %v\n%s", what, err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}
