package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import static dev.cairn.cli.CliRun.cairn;

import dev.cairn.cli.CliRun.Result;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Help and usage: every subcommand prints its usage and exits 0; misspellings are named with a suggestion. */
class HelpTest {
    /** Every subcommand the cairn command has, hidden ones included. */
    static Stream<String> subcommands() {
        List<String> names = new CommandLine(new Main()).getSubcommands().keySet().stream().toList();
        assertThat(names).contains("coordinator", "list", "status", "trigger", "demo", "help");
        return names.stream();
    }

    @ParameterizedTest
    @MethodSource("subcommands")
    void dashDashHelpPrintsUsageAndExitsZero(String sub) {
        for (String flag : List.of("--help", "-h")) {
            Result r = cairn(sub, flag);

            assertThat(r.exit()).as("cairn %s %s; stderr: %s", sub, flag, r.err()).isZero();
            assertThat(r.out()).contains("Usage: cairn " + sub);
            assertThat(r.err()).isEmpty();
        }
    }

    @ParameterizedTest
    @MethodSource("subcommands")
    void helpSubcommandPrintsUsageAndExitsZero(String sub) {
        Result r = cairn("help", sub);

        assertThat(r.exit()).as("cairn help %s; stderr: %s", sub, r.err()).isZero();
        assertThat(r.out()).contains("Usage: cairn " + sub);
    }

    @Test
    void helpWinsOverMissingRequiredOptionsAndOtherOptions() {
        Result r = cairn("coordinator", "--world", "3", "--help");

        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("Usage: cairn coordinator").contains("--storage").contains("--world");
    }

    @Test
    void topLevelHelpAndVersion() {
        assertThat(cairn("--help").exit()).isZero();
        assertThat(cairn("--help").out()).contains("Usage: cairn").contains("coordinator").contains("restore");
        assertThat(cairn("help").exit()).isZero();
        assertThat(cairn("--version").out()).startsWith("cairn ");
        assertThat(cairn("list", "--version").out()).startsWith("cairn ");
    }

    @Test
    void aMisspelledSubcommandIsNamedWithTheClosestOne() {
        Result r = cairn("lsit", "--storage", "/x");

        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err().strip().lines()).singleElement().satisfies(line -> assertThat(line)
                .startsWith("cairn: error: unknown command 'lsit'").contains("did you mean 'list'"));
    }

    @Test
    void aMisspelledOptionIsNamedWithTheClosestOne() {
        Result r = cairn("list", "--storag", "/x");

        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err().strip().lines()).singleElement().satisfies(line -> assertThat(line)
                .startsWith("cairn: error: unknown option '--storag'").contains("did you mean '--storage'")
                .contains("(see 'cairn list --help')"));
    }

    @Test
    void missingRequiredOptionIsStillOneLineAndExitTwo() {
        Result r = cairn("status");

        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err().strip().lines()).singleElement().satisfies(line -> assertThat(line)
                .startsWith("cairn: error: ").contains("--coordinator").contains("(see 'cairn status --help')"));
    }
}
