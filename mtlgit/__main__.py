from mtlgit.cli.main import exit_now, main

exit_now(main())
