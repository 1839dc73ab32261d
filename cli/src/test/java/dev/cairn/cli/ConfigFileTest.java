package dev.cairn.cli;

import static dev.cairn.cli.CliRun.cairn;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.cli.CliRun.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

class ConfigFileTest {
    @TempDir
    Path tmp;

    private static CommandSpec coordinator() {
        return new CommandLine(new Main()).getSubcommands().get("coordinator").getCommandSpec();
    }

    /** Parses {@code args} as cairn would (config expanded) and returns the coordinator command's fields. */
    private static CoordinatorCommand parse(String... args) {
        CommandLine cmd = new CommandLine(new Main());
        CommandLine.ParseResult r = cmd.parseArgs(ConfigFile.expand(args, cmd.getSubcommands().get("coordinator").getCommandSpec()));
        return (CoordinatorCommand) r.subcommand().commandSpec().userObject();
    }

    @Test
    void everyLongOptionIsAKeyAndTheCommandLineWins() throws Exception {
        Path file = Files.writeString(tmp.resolve("coordinator.properties"),
                "# a comment\nworld = 4\nstorage=/data/ckpt\nport=7500\nsave-every-seconds=600\nkeep-last=3\n");

        CoordinatorCommand c = parse("coordinator", "--config", file.toString(), "--port", "7600");

        assertThat(c.world).isEqualTo(4);
        assertThat(c.storage.storage).isEqualTo("/data/ckpt");
        assertThat(c.port).isEqualTo(7600);
        assertThat(c.saveEverySeconds).isEqualTo(600);
        assertThat(c.host).isEqualTo("127.0.0.1");
    }

    @Test
    void aJsonObjectWorksToo() throws Exception {
        Path file = Files.writeString(tmp.resolve("c.json"), "{\"world\": 2, \"storage\": \"/x\", \"host\": \"0.0.0.0\"}");

        CoordinatorCommand c = parse("coordinator", "--config=" + file, "--world", "3");

        assertThat(c.world).isEqualTo(3);
        assertThat(c.host).isEqualTo("0.0.0.0");
    }

    @Test
    void unknownKeysMissingFilesAndBadFlagsAreNamed() throws Exception {
        Path typo = Files.writeString(tmp.resolve("typo.properties"), "wrold=4\n");
        Path array = Files.writeString(tmp.resolve("a.json"), "{\"world\": [1]}");

        assertThatThrownBy(() -> ConfigFile.expand(new String[] {"coordinator", "--config", typo.toString()}, coordinator()))
                .hasMessageContaining(typo.toString()).hasMessageContaining("unknown key 'wrold'").hasMessageContaining("did you mean 'world'");
        assertThatThrownBy(() -> ConfigFile.expand(new String[] {"coordinator", "--config", array.toString()}, coordinator()))
                .hasMessageContaining("key 'world'");
        Path missing = tmp.resolve("none.properties");
        Result r = cairn("coordinator", "--config", missing.toString());
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("cairn: error: config file " + missing + " does not exist");
    }

    @Test
    void aConfigWithABadValueIsBadInputAndCreatesNothing() throws Exception {
        Path root = tmp.resolve("root");
        Path file = Files.writeString(tmp.resolve("c.properties"), "storage=" + root + "\nworld=0\nport=0\n");

        Result r = cairn("coordinator", "--config", file.toString());

        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).startsWith("cairn: error: ").contains("world size");
        assertThat(root).doesNotExist();
    }
}
