from annoloop.compat.lost import script


class BreakLoop(script.Script):
    """Break the loop in iteration 1."""

    def main(self):
        if self.iteration == 1:
            self.break_loop()


if __name__ == "__main__":
    my_script = BreakLoop()
