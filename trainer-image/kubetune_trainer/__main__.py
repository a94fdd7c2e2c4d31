import sys

from kubetune_trainer import main

sys.exit(main())
