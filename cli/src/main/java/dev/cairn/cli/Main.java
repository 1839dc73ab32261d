package dev.cairn.cli;

import dev.cairn.agent.AgentException;
import dev.cairn.cli.logging.Logging;
import dev.cairn.harness.BenchAgentCommand;
import dev.cairn.harness.BenchCommand;
import dev.cairn.harness.ChaosCommand;
import dev.cairn.harness.DemoCommand;
import dev.cairn.harness.ToyWorkerCommand;
import dev.cairn.storage.InvalidStorageUriException;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.StorageUnavailableException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code cairn} command. Exit codes: 0 success; 1 a check failed (verify found corruption, the
 * demo or a campaign saw a violation) or an unexpected error; 2 bad usage or bad input (the message
 * names what was wrong; nothing was written).
 */
@Command(name = "cairn", mixinStandardHelpOptions = true, version = "cairn 0.1.0",
        // every subcommand inherits -h/--help and -V/--version: `cairn X --help` works even where X has required options
        scope = CommandLine.ScopeType.INHERIT,
        description = "Distributed checkpoint coordinator for multi-worker training.",
        subcommands = {
            CoordinatorCommand.class,
            ListCommand.class,
            ShowCommand.class,
            VerifyCommand.class,
            RestoreCommand.class,
            ExportCommand.class,
            GcCommand.class,
            StatusCommand.class,
            TriggerCommand.class,
            AgentCommand.class,
            DemoCommand.class,
            ChaosCommand.class,
            ToyWorkerCommand.class,
            BenchCommand.class,
            BenchAgentCommand.class,
            CommandLine.HelpCommand.class
        })
public final class Main implements Runnable {
    static final int EXIT_CHECK_FAILED = 1;
    static final int EXIT_BAD_INPUT = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
    }

    public static void main(String[] args) {
        Logging.Settings logging;
        try {
            logging = Logging.parse(System.getenv("CAIRN_LOG"), Logging.defaultLevel(args));
        } catch (IllegalArgumentException e) {
            System.err.println("cairn: error: " + e.getMessage());
            System.exit(EXIT_BAD_INPUT);
            return;
        }
        Logging.configure(logging, args);
        if (args.length > 0 && args[0].equals("agent")) {
            // the sidecar parses its own options (AgentCommand only documents them for `cairn help agent`)
            System.exit(dev.cairn.agent.sidecar.SidecarMain.run(java.util.Arrays.copyOfRange(args, 1, args.length), System.out, System.err));
        }
        System.exit(execute(args));
    }

    /** Runs the command line and returns its exit code (tests call this in-process). */
    public static int execute(String... args) {
        CommandLine cmd = new CommandLine(new Main());
        // bad usage (unknown option, a value of the wrong type, a missing parameter) is one line, not the usage page
        cmd.setParameterExceptionHandler(Main::badUsage);
        cmd.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            String message = e.getMessage() == null ? e.toString() : e.getMessage();
            if (isBadInput(e)) {
                commandLine.getErr().println("cairn: error: " + message);
                return EXIT_BAD_INPUT;
            }
            commandLine.getErr().println("cairn: failed: " + message);
            if (System.getenv("CAIRN_DEBUG") != null) {
                e.printStackTrace(commandLine.getErr());
            }
            return EXIT_CHECK_FAILED;
        });
        String[] expanded = args;
        CommandLine sub = args.length > 0 ? cmd.getSubcommands().get(args[0]) : null;
        boolean helpRequested = java.util.Arrays.stream(args).anyMatch(a -> a.equals("--help") || a.equals("-h"));
        if (sub != null && !helpRequested && sub.getCommandSpec().findOption(ConfigFile.OPTION) != null) {
            try {
                expanded = ConfigFile.expand(args, sub.getCommandSpec());
            } catch (UserError e) {
                cmd.getErr().println("cairn: error: " + e.getMessage());
                return EXIT_BAD_INPUT;
            }
        }
        return cmd.execute(expanded);
    }

    /**
     * Bad usage is one line naming what was wrong, with the closest valid subcommand or option when
     * something was misspelled; a help request that came with bad usage still prints the help.
     */
    private static int badUsage(CommandLine.ParameterException e, String[] args) {
        CommandLine failed = e.getCommandLine();
        Integer help = failed.getParseResult() == null ? null : CommandLine.executeHelpRequest(failed.getParseResult());
        if (help != null) {
            return help;
        }
        // picocli reports a missing required option before an unknown one; the misspelling is the real error
        String message = Usage.unknownOption(failed.getCommandSpec(), args)
                .orElseGet(() -> e instanceof CommandLine.UnmatchedArgumentException u ? Usage.unmatched(u) : e.getMessage());
        failed.getErr().println("cairn: error: " + message + " (see '" + failed.getCommandSpec().qualifiedName() + " --help')");
        return EXIT_BAD_INPUT;
    }

    static boolean isBadInput(Throwable e) {
        return e instanceof UserError
                || e instanceof InvalidStorageUriException
                || e instanceof StorageUnavailableException
                || e instanceof ManifestException
                || e instanceof IllegalArgumentException
                || (e instanceof AgentException a && a.badInput());
    }
}
