# Java binding (java/): a Maven module; protoc (com.google.protobuf:protoc,
# same version as protobuf-java) generates the message classes at build time,
# so no generated Java is committed. Every plugin and dependency is pinned in
# java/pom.xml; artifacts come from Maven Central into ~/.m2.
.PHONY: testee-java test-java

TESTEE_TARGETS += testee-java
TEST_TARGETS += test-java

JAVA_MVN ?= mvn
JAVA_MVN_FLAGS := -B -Dstyle.color=never --no-transfer-progress

# The jar, its runtime dependencies (java/target/lib) and the compiled test
# sources (java/target/test-classes, where the testee is) that
# tests/conformance/testee-java runs; tests run in test-java.
testee-java: ## the Java jar and the conformance testee
	cd java && $(JAVA_MVN) $(JAVA_MVN_FLAGS) -q package -DskipTests

test-java: ## mvn verify
	cd java && $(JAVA_MVN) $(JAVA_MVN_FLAGS) verify
