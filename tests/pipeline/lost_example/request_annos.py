import os

from annoloop.compat.lost import script

ENVS = ["lost"]
ARGUMENTS = {
    "recursive": {"value": "true", "help": "Look for images in sub folders too"},
    "valid_imgtypes": {
        "value": "['.jpg', '.jpeg', '.png', '.bmp']",
        "help": "Image types to request annotations for",
    },
    "propose": {"value": "true", "help": "Propose a box in the middle of each image"},
}


class LostScript(script.Script):
    """Request annotations for each image of an image folder."""

    def request(self, fs, path):
        if os.path.splitext(path)[1].lower() in self.get_arg("valid_imgtypes"):
            if self.get_arg("propose"):
                self.outp.request_annos(
                    path,
                    annos=[[0.5, 0.5, 0.3, 0.3]],
                    anno_types=["bbox"],
                    anno_labels=[["object"]],
                    fs=fs,
                )
            else:
                self.outp.request_annos(path, fs=fs)
            self.logger.info(f"Requested annos for: {path}")
        else:
            self.logger.warning(f"{path} is not an image")

    def main(self):
        for ds in self.inp.datasources:
            fs = ds.get_fs()
            if self.get_arg("recursive"):
                for root, _dirs, files in fs.walk(ds.path):
                    for name in files:
                        self.request(fs, os.path.join(root, name))
            else:
                for path in fs.ls(ds.path):
                    self.request(fs, path)


if __name__ == "__main__":
    my_script = LostScript()
